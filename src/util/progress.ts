import { SlurmkitError } from './errors.js';

export interface PhaseTiming {
  phase: string;
  ms: number;
}

/** What a Progress reports, for listeners that want structure rather than lines (the server's operations). */
export type ProgressEvent =
  | { type: 'info'; message: string }
  | { type: 'phase-start'; phase: string }
  | { type: 'phase'; phase: string; ms: number; ok: boolean }
  | { type: 'count'; what: string; done: number; failed: number; total: number };

/** Reports lifecycle phases with their durations; the CLI prints them, the server streams them, tests stay quiet. */
export class Progress {
  readonly timings: PhaseTiming[] = [];
  constructor(
    private readonly out: ((line: string) => void) | undefined = undefined,
    /** When aborted (Ctrl-C), the next phase throws INTERRUPTED, so the command cleans up as on any failure. */
    readonly signal?: AbortSignal,
    private readonly onEvent?: (event: ProgressEvent) => void,
  ) {}

  /** Structured events only, no lines. */
  static events(onEvent: (event: ProgressEvent) => void, signal?: AbortSignal): Progress {
    return new Progress(undefined, signal, onEvent);
  }

  static stderr(signal: AbortSignal | undefined = interruptSignal): Progress {
    return new Progress((line) => process.stderr.write(`${line}\n`), signal);
  }

  static silent(): Progress {
    return new Progress();
  }

  info(line: string): void {
    this.out?.(line);
    this.onEvent?.({ type: 'info', message: line });
  }

  /** How far a counted piece of work is (blobs converted, say); for listeners only, the CLI draws its own bars. */
  count(what: string, done: number, total: number, failed = 0): void {
    this.onEvent?.({ type: 'count', what, done, failed, total });
  }

  /** Cleanup phases pass `always`: they run even after an interrupt. */
  async phase<T>(name: string, fn: () => Promise<T>, opts: { always?: boolean } = {}): Promise<T> {
    if (this.signal?.aborted && !opts.always) throw new SlurmkitError('INTERRUPTED', `interrupted before: ${name}`);
    const start = performance.now();
    this.onEvent?.({ type: 'phase-start', phase: name });
    try {
      const value = await fn();
      const ms = Math.round(performance.now() - start);
      this.timings.push({ phase: name, ms });
      this.out?.(`  ✓ ${name.padEnd(34)} ${formatMs(ms)}`);
      this.onEvent?.({ type: 'phase', phase: name, ms, ok: true });
      return value;
    } catch (err) {
      const ms = Math.round(performance.now() - start);
      this.out?.(`  ✗ ${name.padEnd(34)} ${formatMs(ms)}`);
      this.onEvent?.({ type: 'phase', phase: name, ms, ok: false });
      throw err;
    }
  }
}

let interruptSignal: AbortSignal | undefined;

/** Set once by the CLI: the signal its SIGINT/SIGTERM handler aborts. */
export function setInterruptSignal(signal: AbortSignal): void {
  interruptSignal = signal;
}

export function formatMs(ms: number): string {
  return ms < 1000 ? `${ms} ms` : `${(ms / 1000).toFixed(2)} s`;
}
