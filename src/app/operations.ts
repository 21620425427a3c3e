/**
 * Long operations (create, start, stop, destroy, scale, batch) run in the background of a
 * long-lived process (the server): each gets an id at once, records its progress events, and
 * ends with a result or an error with its code. Listeners follow it live (the server streams
 * them as Server-Sent Events). Kept in memory: a restarted server starts with none.
 */
import { randomUUID } from 'node:crypto';
import { Progress, type ProgressEvent } from '../util/progress.js';
import { asSlurmkitError, SlurmkitError } from '../util/errors.js';

export const OPERATION_KINDS = ['create', 'start', 'stop', 'destroy', 'add-nodes', 'terminate-nodes', 'batch', 'demo'] as const;
export type OperationKind = (typeof OPERATION_KINDS)[number];

export interface OperationError {
  code: string;
  message: string;
  hint?: string | undefined;
  details: string[];
}

export interface Operation {
  id: string;
  kind: OperationKind;
  cluster: string;
  status: 'running' | 'succeeded' | 'failed';
  startedAt: string;
  endedAt?: string;
  ms?: number;
  events: ProgressEvent[];
  result?: unknown;
  error?: OperationError;
}

export type OperationUpdate = { type: 'event'; event: ProgressEvent } | { type: 'end'; operation: Operation };

/** How many finished operations are kept for GET; running ones are always kept. */
const KEEP_FINISHED = 200;

export class Operations {
  private readonly all = new Map<string, Operation>();
  private readonly listeners = new Map<string, Set<(u: OperationUpdate) => void>>();
  private readonly abort = new AbortController();

  constructor(private readonly onEnd?: (op: Operation) => void) {}

  /** Starts `run` in the background and returns its operation at once. */
  start(kind: OperationKind, cluster: string, run: (progress: Progress) => Promise<unknown>): Operation {
    const op: Operation = { id: randomUUID(), kind, cluster, status: 'running', startedAt: new Date().toISOString(), events: [] };
    this.all.set(op.id, op);
    const t0 = performance.now();
    const progress = Progress.events((event) => {
      op.events.push(event);
      this.emit(op.id, { type: 'event', event });
    }, this.abort.signal);
    void run(progress).then(
      (result) => this.finish(op, t0, { status: 'succeeded', result }),
      (err: unknown) => {
        const e = asSlurmkitError(err);
        this.finish(op, t0, { status: 'failed', error: { code: e.code, message: e.message, hint: e.hint, details: e.details } });
      },
    );
    return op;
  }

  get(id: string): Operation {
    const op = this.all.get(id);
    if (!op) throw new SlurmkitError('NOT_FOUND', `no operation ${id}`, { hint: 'operations are kept in memory by the server that started them; list them with GET /api/v1/operations' });
    return op;
  }

  list(): Operation[] {
    return [...this.all.values()];
  }

  /** Follows an operation: every later event, then its end. Returns the function that stops following. */
  follow(id: string, listener: (u: OperationUpdate) => void): () => void {
    let set = this.listeners.get(id);
    if (!set) this.listeners.set(id, (set = new Set()));
    set.add(listener);
    return () => set.delete(listener);
  }

  /** Running operations stop at their next phase (and clean up as on any failure). */
  interrupt(): void {
    this.abort.abort();
  }

  /** Resolves when no operation runs. */
  async settled(): Promise<void> {
    while (this.list().some((o) => o.status === 'running')) await new Promise((r) => setTimeout(r, 100));
  }

  private finish(op: Operation, t0: number, end: Pick<Operation, 'status' | 'result' | 'error'>): void {
    Object.assign(op, end, { endedAt: new Date().toISOString(), ms: Math.round(performance.now() - t0) });
    this.emit(op.id, { type: 'end', operation: op });
    this.listeners.delete(op.id);
    this.onEnd?.(op);
    const finished = this.list().filter((o) => o.status !== 'running');
    for (const old of finished.slice(0, Math.max(0, finished.length - KEEP_FINISHED))) this.all.delete(old.id);
  }

  private emit(id: string, u: OperationUpdate): void {
    for (const l of this.listeners.get(id) ?? []) l(u);
  }
}
