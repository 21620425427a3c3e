import { SlurmkitError } from '../util/errors.js';
/** Left-aligned columns, like sinfo prints them. */
export function renderTable(headers: string[], rows: string[][]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join('  ');
  return [line(headers), ...rows.map(line)].join('\n');
}

/** A command's result: JSON with --json, else the human text. */
export function print(json: boolean, value: unknown, human: () => string): void {
  process.stdout.write(json ? `${JSON.stringify(value, null, 2)}\n` : `${human()}\n`);
}

/** A positive number of seconds from a flag, or USAGE naming the flag. */
export function seconds(value: string, flag: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) {
    throw new SlurmkitError('USAGE', `${flag} must be a positive number of seconds, got "${value}"`, { hint: `for example ${flag} 120` });
  }
  return n;
}
