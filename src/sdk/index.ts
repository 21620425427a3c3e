/**
 * The TypeScript SDK of `slurmkit serve`: drive clusters and run work on them from another
 * program, over the REST API.
 *
 *   const sk = connect({ url: 'http://127.0.0.1:8642', token });
 *   const lab = await sk.clusters.create({ template: 'minimal' });
 *   const job = await lab.submit('#!/bin/bash\nsrun hostname\n');
 *   await job.wait();
 *   console.log(await job.output());
 *   console.log(await lab.run((a, b) => a + b, 2, 3)); // 5, computed on a node
 *
 * Uses nothing but fetch; the server's types come along as types only, and Slurm's final job
 * states from the pure parser module.
 */
import { isFinal } from '../slurm/jobs.js';
import type { JobView } from '../slurm/jobs.js';
import type { Operation } from '../app/operations.js';
import type { ProgressEvent } from '../util/progress.js';
import type { ClusterView, NodeView } from '../cluster/inspect.js';
import type { BlobInfo, ContainerInfo } from '../storage/types.js';

export type { JobView, Operation, ProgressEvent, ClusterView, NodeView, BlobInfo, ContainerInfo };

export interface ConnectOptions {
  /** Where `slurmkit serve` listens, e.g. http://127.0.0.1:8642. */
  url: string;
  /** The token from `slurmkit token` (the file it names). */
  token: string;
}

/** An error answered by the server: its stable code (NOT_FOUND, CONFLICT, ...), HTTP status, message and hint. */
export class SlurmkitApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly hint?: string,
    readonly details: string[] = [],
  ) {
    super(message);
    this.name = 'SlurmkitApiError';
  }
}

/** An exception thrown by a function shipped with `cluster.run`, with the stack it had on the node. */
export class RemoteError extends Error {
  constructor(
    readonly remoteName: string,
    message: string,
    readonly remoteStack: string,
    readonly job: string,
  ) {
    super(message);
    this.name = 'RemoteError';
    this.stack = `RemoteError (job ${job}): ${remoteStack}`;
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

class Http {
  constructor(private readonly opts: ConnectOptions) {}

  async request(method: string, path: string, body?: unknown, raw?: { data: Uint8Array; contentType: string }): Promise<Response> {
    const headers: Record<string, string> = { authorization: `Bearer ${this.opts.token}` };
    let payload: string | Uint8Array | undefined;
    if (raw) {
      headers['content-type'] = raw.contentType;
      payload = raw.data;
    } else if (body !== undefined) {
      headers['content-type'] = 'application/json';
      payload = JSON.stringify(body);
    }
    const res = await fetch(`${this.opts.url.replace(/\/+$/, '')}/api/v1${path}`, { method, headers, ...(payload === undefined ? {} : { body: payload }) });
    if (!res.ok) {
      const text = await res.text();
      let e: { code?: string; message?: string; hint?: string; details?: string[] } = {};
      try {
        e = (JSON.parse(text) as { error: typeof e }).error ?? {};
      } catch {
        // Not one of ours (a proxy's page, say): keep the status.
      }
      throw new SlurmkitApiError(res.status, e.code ?? `HTTP_${res.status}`, e.message ?? `${method} ${path}: HTTP ${res.status}`, e.hint, e.details ?? []);
    }
    return res;
  }

  async json<T>(method: string, path: string, body?: unknown): Promise<T> {
    return (await (await this.request(method, path, body)).json()) as T;
  }

  /** Follows an operation's Server-Sent Events to its end; a failed operation throws its error. */
  async operation(op: Operation, onEvent?: (e: ProgressEvent) => void): Promise<Operation> {
    const res = await this.request('GET', `/operations/${op.id}/events`);
    const decoder = new TextDecoder();
    let buffer = '';
    let end: Operation | undefined;
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      buffer += decoder.decode(chunk, { stream: true });
      let cut: number;
      while ((cut = buffer.indexOf('\n\n')) >= 0) {
        const block = buffer.slice(0, cut);
        buffer = buffer.slice(cut + 2);
        const event = /^event: (.*)$/m.exec(block)?.[1];
        const data = block
          .split('\n')
          .filter((l) => l.startsWith('data: '))
          .map((l) => l.slice(6))
          .join('\n');
        if (event === 'progress') onEvent?.(JSON.parse(data) as ProgressEvent);
        else if (event === 'end') end = JSON.parse(data) as Operation;
      }
    }
    if (!end) throw new SlurmkitApiError(0, 'STREAM_ENDED', `the event stream of operation ${op.id} ended before the operation did`);
    if (end.status === 'failed') throw new SlurmkitApiError(0, end.error?.code ?? 'INTERNAL', end.error?.message ?? 'operation failed', end.error?.hint, end.error?.details ?? []);
    return end;
  }
}

export interface WaitOptions {
  /** Give up after this long (default 10 minutes). */
  timeoutMs?: number;
  /** Polling starts at 100 ms and grows to this (default 1 s). */
  maxIntervalMs?: number;
}

export class Job {
  constructor(
    private readonly http: Http,
    readonly cluster: string,
    readonly id: string,
  ) {}

  /** The job as Slurm has it now. */
  info(): Promise<JobView> {
    return this.http.json('GET', `/clusters/${this.cluster}/jobs/${this.id}`);
  }

  /** Resolves with the job once it has ended (COMPLETED, FAILED, CANCELLED, ...). */
  async wait(opts: WaitOptions = {}): Promise<JobView> {
    const deadline = Date.now() + (opts.timeoutMs ?? 600_000);
    let interval = 100;
    for (;;) {
      const j = await this.info();
      if (isFinal(j.state)) return j;
      if (Date.now() > deadline) throw new SlurmkitApiError(0, 'TIMEOUT', `job ${this.id} is still ${j.state} after ${opts.timeoutMs ?? 600_000} ms`);
      await sleep(interval);
      interval = Math.min(opts.maxIntervalMs ?? 1000, interval * 1.5);
    }
  }

  /** What the job wrote to its standard output so far. */
  async output(): Promise<string> {
    return (await this.http.request('GET', `/clusters/${this.cluster}/jobs/${this.id}/output`)).text();
  }

  async cancel(): Promise<void> {
    await this.http.json('DELETE', `/clusters/${this.cluster}/jobs/${this.id}`);
  }
}

export interface SubmitOptions {
  /** A cluster user from the spec; root when left out. */
  user?: string;
  partition?: string;
  name?: string;
}

export interface RunOptions extends SubmitOptions, WaitOptions {}

export class Cluster {
  constructor(
    private readonly http: Http,
    readonly name: string,
  ) {}

  info(): Promise<ClusterView & { nodeList: NodeView[] }> {
    return this.http.json('GET', `/clusters/${this.name}`);
  }

  nodes(): Promise<NodeView[]> {
    return this.http.json('GET', `/clusters/${this.name}/nodes`);
  }

  queue(): Promise<JobView[]> {
    return this.http.json('GET', `/clusters/${this.name}/jobs`);
  }

  history(opts: { since?: string; limit?: number } = {}): Promise<JobView[]> {
    const q = new URLSearchParams(Object.entries(opts).map(([k, v]): [string, string] => [k, String(v)]));
    return this.http.json('GET', `/clusters/${this.name}/history${q.size ? `?${q}` : ''}`);
  }

  /** Submits a batch script (it starts with #!); its output is read with `job.output()`. */
  async submit(script: string, opts: SubmitOptions = {}): Promise<Job> {
    const r = await this.http.json<{ id: string }>('POST', `/clusters/${this.name}/jobs`, { script, ...opts });
    return new Job(this.http, this.name, r.id);
  }

  job(id: string): Job {
    return new Job(this.http, this.name, id);
  }

  /**
   * Runs `fn(...args)` on a node as a Slurm job and returns its result. `fn` must be
   * self-contained: it is shipped as source, so it sees only its arguments and Node's globals
   * (use `await import('node:os')` inside it for modules). Arguments and result travel as JSON.
   * An exception on the node is thrown here as a RemoteError with the node's stack.
   */
  async run<A extends unknown[], R>(fn: (...args: A) => R | Promise<R>, ...args: A): Promise<Awaited<R>>;
  async run(fn: (...args: unknown[]) => unknown, ...args: unknown[]): Promise<unknown> {
    return this.runWith({}, fn, ...args);
  }

  /** `run` with options: the user and partition to run as, and how long to wait. */
  async runWith<A extends unknown[], R>(opts: RunOptions, fn: (...args: A) => R | Promise<R>, ...args: A): Promise<Awaited<R>> {
    const { user, partition, ...wait } = opts;
    const sub = await this.http.json<{ call: string; job: string }>('POST', `/clusters/${this.name}/calls`, {
      source: fn.toString(),
      args,
      ...(user ? { user } : {}),
      ...(partition ? { partition } : {}),
    });
    const job = await new Job(this.http, this.name, sub.job).wait(wait);
    const r = await this.http.json<{ done: boolean; result?: { ok: true; value: unknown } | { ok: false; error: { name: string; message: string; stack: string } } }>(
      'GET',
      `/clusters/${this.name}/calls/${sub.call}`,
    );
    if (!r.done || !r.result) {
      throw new SlurmkitApiError(0, 'NO_RESULT', `job ${sub.job} ended ${job.state} (exit ${job.exitCode}) without a result`, `its output: job(${JSON.stringify(sub.job)}).output()`);
    }
    if (!r.result.ok) throw new RemoteError(r.result.error.name, r.result.error.message, r.result.error.stack, sub.job);
    return r.result.value as Awaited<R>;
  }

  containers(): Promise<ContainerInfo[]> {
    return this.http.json('GET', `/clusters/${this.name}/blob/containers`);
  }

  /** Creates a container (an existing one is kept). */
  createContainer(container: string): Promise<{ container: string; created: boolean }> {
    return this.http.json('PUT', `/clusters/${this.name}/blob/containers/${container}`);
  }

  blobs(container: string, prefix?: string): Promise<BlobInfo[]> {
    return this.http.json('GET', `/clusters/${this.name}/blob/containers/${container}/blobs${prefix ? `?prefix=${encodeURIComponent(prefix)}` : ''}`);
  }

  async upload(container: string, name: string, data: Uint8Array, contentType = 'application/octet-stream'): Promise<BlobInfo> {
    const res = await this.http.request('PUT', `/clusters/${this.name}/blob/containers/${container}/blob?name=${encodeURIComponent(name)}`, undefined, { data, contentType });
    return (await res.json()) as BlobInfo;
  }

  async download(container: string, name: string): Promise<Uint8Array> {
    const res = await this.http.request('GET', `/clusters/${this.name}/blob/containers/${container}/blob?name=${encodeURIComponent(name)}`);
    return new Uint8Array(await res.arrayBuffer());
  }

  /** Converts every blob of `input` into `output` over the workers; resolves with the run's summary. */
  async batch(req: { input: string; output: string; builtin?: 'grayscale'; command?: string[]; force?: boolean }, onEvent?: (e: ProgressEvent) => void): Promise<unknown> {
    return (await this.http.operation(await this.http.json('POST', `/clusters/${this.name}/batch`, req), onEvent)).result;
  }

  async addNodes(count: number, opts: { group?: string; onEvent?: (e: ProgressEvent) => void } = {}): Promise<string[]> {
    const op = await this.http.json<Operation>('POST', `/clusters/${this.name}/nodes`, { count, ...(opts.group ? { group: opts.group } : {}) });
    return ((await this.http.operation(op, opts.onEvent)).result as { nodes: string[] }).nodes;
  }

  async terminate(node: string, opts: { force?: boolean; onEvent?: (e: ProgressEvent) => void } = {}): Promise<void> {
    await this.http.operation(await this.http.json('DELETE', `/clusters/${this.name}/nodes/${node}${opts.force ? '?force=true' : ''}`), opts.onEvent);
  }

  async stop(onEvent?: (e: ProgressEvent) => void): Promise<void> {
    await this.http.operation(await this.http.json('POST', `/clusters/${this.name}/stop`), onEvent);
  }

  async start(onEvent?: (e: ProgressEvent) => void): Promise<void> {
    await this.http.operation(await this.http.json('POST', `/clusters/${this.name}/start`), onEvent);
  }

  /** Takes the cluster down, leaving nothing behind. */
  async destroy(onEvent?: (e: ProgressEvent) => void): Promise<void> {
    await this.http.operation(await this.http.json('DELETE', `/clusters/${this.name}`), onEvent);
  }

  /** `await using lab = await sk.clusters.create(...)` destroys it at the end of the block. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.destroy();
  }
}

export interface Client {
  clusters: {
    list(): Promise<ClusterView[]>;
    get(name: string): Cluster;
    /** Creates a cluster from a template or a spec (YAML text) and resolves once every node is idle. */
    create(req: { template?: string; spec?: string; name?: string; provider?: string }, onEvent?: (e: ProgressEvent) => void): Promise<Cluster>;
  };
  operations(): Promise<Operation[]>;
}

export function connect(opts: ConnectOptions): Client {
  const http = new Http(opts);
  return {
    clusters: {
      list: () => http.json('GET', '/clusters'),
      get: (name) => new Cluster(http, name),
      async create(req, onEvent) {
        const op = await http.json<Operation>('POST', '/clusters', req);
        await http.operation(op, onEvent);
        return new Cluster(http, op.cluster);
      },
    },
    operations: () => http.json('GET', '/operations'),
  };
}
