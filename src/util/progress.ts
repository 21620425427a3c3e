import { SlurmkitError } from './errors.js';

export interface PhaseTiming {
  phase: string;
  ms: number;
}

/** Reports lifecycle phases with their durations; the CLI prints them, tests stay quiet. */
export class Progress {
  readonly timings: PhaseTiming[] = [];
  constructor(
    private readonly out: ((line: string) => void) | undefined = undefined,
    /** When aborted (Ctrl-C), the next phase throws INTERRUPTED, so the command cleans up as on any failure. */
    readonly signal?: AbortSignal,
  ) {}

  static stderr(signal: AbortSignal | undefined = interruptSignal): Progress {
    return new Progress((line) => process.stderr.write(`${line}\n`), signal);
  }

  static silent(): Progress {
    return new Progress();
  }

  info(line: string): void {
    this.out?.(line);
  }

  /** Cleanup phases pass `always`: they run even after an interrupt. */
  async phase<T>(name: string, fn: () => Promise<T>, opts: { always?: boolean } = {}): Promise<T> {
    if (this.signal?.aborted && !opts.always) throw new SlurmkitError('INTERRUPTED', `interrupted before: ${name}`);
    const start = performance.now();
    try {
      const value = await fn();
      const ms = Math.round(performance.now() - start);
      this.timings.push({ phase: name, ms });
      this.out?.(`  ✓ ${name.padEnd(34)} ${formatMs(ms)}`);
      return value;
    } catch (err) {
      const ms = Math.round(performance.now() - start);
      this.out?.(`  ✗ ${name.padEnd(34)} ${formatMs(ms)}`);
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
