export interface PhaseTiming {
  phase: string;
  ms: number;
}

/** Reports lifecycle phases with their durations; the CLI prints them, tests stay quiet. */
export class Progress {
  readonly timings: PhaseTiming[] = [];
  constructor(private readonly out: ((line: string) => void) | undefined = undefined) {}

  static stderr(): Progress {
    return new Progress((line) => process.stderr.write(`${line}\n`));
  }

  static silent(): Progress {
    return new Progress();
  }

  info(line: string): void {
    this.out?.(line);
  }

  async phase<T>(name: string, fn: () => Promise<T>): Promise<T> {
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

export function formatMs(ms: number): string {
  return ms < 1000 ? `${ms} ms` : `${(ms / 1000).toFixed(2)} s`;
}
