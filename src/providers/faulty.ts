/**
 * A provider that wraps a real one and makes chosen calls fail, to test what callers do when
 * machines fail. Every injected failure keeps the contract's failure semantics: a rejected
 * call either never reached the wrapped provider (nothing was made) or went through the
 * wrapped provider's own failure path (a node's boot that fails).
 */
import type {
  Check,
  PreflightRequest,
  ClusterLabel,
  CreateNodesRequest,
  ExecRequest,
  ExecResult,
  LabelSelector,
  LeftoverReport,
  NetworkRequest,
  NodeProvider,
  NodeStatus,
} from './types.js';
import { SlurmkitError } from '../util/errors.js';
import { sleep } from '../util/run.js';

export type ProviderMethod = 'ensureNetwork' | 'createNodes' | 'destroyNodes' | 'exec' | 'list' | 'removeByLabel';

interface FaultTiming {
  /** Fire on this call of the method only (0-based, counting every call of it); default: the next matching calls. */
  call?: number;
  /** How many times the fault fires before it is spent; default 1, Infinity for always. */
  times?: number;
}

export type Fault = FaultTiming &
  (
    | {
        /** The call rejects without reaching the wrapped provider. */
        kind: 'reject';
        method: ProviderMethod;
        /** Only calls about this node (exec's node, a hostname in createNodes or destroyNodes). */
        node?: string;
        /** Default: SlurmkitError COMMAND_FAILED naming the fault. */
        error?: Error;
      }
    | {
        /**
         * createNodes: this node's boot commands exit non-zero, so the wrapped provider fails
         * the request as for any failed boot (console output in the message, the request's
         * nodes destroyed). `node` is a hostname, or the nth node (0-based) over every
         * createNodes request seen, in request order.
         */
        kind: 'bootFails';
        node: string | number;
        exitCode?: number;
      }
    | {
        /** exec resolves with this result without running anything (e.g. a health probe that fails). */
        kind: 'execResult';
        node?: string;
        result: Partial<ExecResult>;
      }
    | {
        /** The call waits this long before going on to the wrapped provider (to run into timeouts). */
        kind: 'delay';
        method: ProviderMethod;
        ms: number;
      }
    | {
        /** removeByLabel runs, then also reports `resource` as one it could not remove. */
        kind: 'leftover';
        resource: string;
      }
  );

interface Armed {
  fault: Fault;
  left: number;
}

const methodOf = (f: Fault): ProviderMethod =>
  f.kind === 'bootFails' ? 'createNodes' : f.kind === 'execResult' ? 'exec' : f.kind === 'leftover' ? 'removeByLabel' : f.method;

export class FaultyProvider implements NodeProvider {
  readonly kind: string;
  readonly capabilities: NodeProvider['capabilities'];
  /** Faults that fired, in order, with the method call they hit. */
  readonly fired: { fault: Fault; method: ProviderMethod; call: number }[] = [];
  private readonly armed: Armed[] = [];
  private readonly calls = new Map<ProviderMethod, number>();
  private nodesSeen = 0;

  constructor(
    readonly inner: NodeProvider,
    faults: Fault[] = [],
  ) {
    this.kind = `faulty(${inner.kind})`;
    this.capabilities = inner.capabilities;
    for (const f of faults) this.inject(f);
  }

  /** Arms one more fault. */
  inject(fault: Fault): this {
    this.armed.push({ fault, left: fault.times ?? 1 });
    return this;
  }

  /** Faults not spent yet. */
  get pending(): Fault[] {
    return this.armed.filter((a) => a.left > 0).map((a) => a.fault);
  }

  /** Counts the call and takes every armed fault of `method` that applies to it. */
  private take(method: ProviderMethod, applies: (f: Fault) => boolean = () => true): Fault[] {
    const call = this.calls.get(method) ?? 0;
    this.calls.set(method, call + 1);
    const hit: Fault[] = [];
    for (const a of this.armed) {
      const f = a.fault;
      if (a.left <= 0 || methodOf(f) !== method || (f.call !== undefined && f.call !== call) || !applies(f)) continue;
      a.left--;
      hit.push(f);
      this.fired.push({ fault: f, method, call });
    }
    return hit;
  }

  private async before(method: ProviderMethod, hit: Fault[]): Promise<void> {
    for (const f of hit) if (f.kind === 'delay') await sleep(f.ms);
    const reject = hit.find((f) => f.kind === 'reject');
    if (reject && reject.kind === 'reject') {
      throw reject.error ?? new SlurmkitError('COMMAND_FAILED', `injected fault: ${method} rejected`);
    }
  }

  async ensureNetwork(req: NetworkRequest): Promise<void> {
    await this.before('ensureNetwork', this.take('ensureNetwork'));
    return this.inner.ensureNetwork(req);
  }

  async createNodes(req: CreateNodesRequest): Promise<void> {
    const first = this.nodesSeen;
    this.nodesSeen += req.nodes.length;
    const hostnames = req.nodes.map((n) => n.hostname);
    const bootFailing = (f: Fault, hostname: string, i: number): boolean =>
      f.kind === 'bootFails' && (typeof f.node === 'number' ? f.node === first + i : f.node === hostname);
    const hit = this.take('createNodes', (f) =>
      f.kind === 'bootFails'
        ? hostnames.some((h, i) => bootFailing(f, h, i))
        : f.kind !== 'reject' || f.node === undefined || hostnames.includes(f.node),
    );
    await this.before('createNodes', hit);
    const nodes = req.nodes.map((n, i) => {
      const fault = hit.find((f) => bootFailing(f, n.hostname, i));
      if (!fault || fault.kind !== 'bootFails') return n;
      const code = fault.exitCode ?? 97;
      return { ...n, boot: `echo "injected fault: boot of ${n.hostname} fails with exit code ${code}" >&2\nexit ${code}` };
    });
    return this.inner.createNodes({ ...req, nodes });
  }

  async destroyNodes(label: ClusterLabel, hostnames: string[], opts?: { graceMs?: number }): Promise<void> {
    const hit = this.take('destroyNodes', (f) => f.kind !== 'reject' || f.node === undefined || hostnames.includes(f.node));
    await this.before('destroyNodes', hit);
    return this.inner.destroyNodes(label, hostnames, opts);
  }

  async exec(req: ExecRequest): Promise<ExecResult> {
    const hit = this.take('exec', (f) => !('node' in f) || f.node === undefined || f.node === req.node);
    await this.before('exec', hit);
    const canned = hit.find((f) => f.kind === 'execResult');
    if (canned && canned.kind === 'execResult') return { exitCode: 0, stdout: '', stderr: '', ...canned.result };
    return this.inner.exec(req);
  }

  async list(label: ClusterLabel): Promise<NodeStatus[]> {
    await this.before('list', this.take('list'));
    return this.inner.list(label);
  }

  lostHosts(): string[] {
    return this.inner.lostHosts?.() ?? [];
  }

  reach(label: ClusterLabel, hostname: string, address: string, port: number): Promise<{ address: string; port: number }> {
    return this.inner.reach(label, hostname, address, port);
  }

  preflight(req: PreflightRequest): Promise<Check[]> {
    return this.inner.preflight(req);
  }

  takenSubnets(): Promise<string[]> {
    return this.inner.takenSubnets();
  }

  async removeByLabel(select: LabelSelector): Promise<LeftoverReport> {
    const hit = this.take('removeByLabel');
    await this.before('removeByLabel', hit);
    const report = await this.inner.removeByLabel(select);
    for (const f of hit) {
      if (f.kind !== 'leftover') continue;
      report.found.push(f.resource);
      report.failed.push({ resource: f.resource, error: 'injected fault: could not remove', retry: 'true' });
    }
    return report;
  }
}
