/**
 * Runs one shipped function call inside a Slurm job: `node run-call.js FOLDER`. Reads
 * FOLDER/call.json, calls the function with its arguments (awaiting a promise), and writes
 * FOLDER/result.json atomically: the value, or the error with its stack. A call that throws
 * exits 1, so Slurm and accounting see the job FAILED.
 */
import { readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CALL_FILE, RESULT_FILE, type CallResult, type CallSpec } from './call.js';

async function main(folder: string): Promise<number> {
  let result: CallResult;
  try {
    const call = JSON.parse(await readFile(join(folder, CALL_FILE), 'utf8')) as CallSpec;
    if (call.language !== 'javascript') throw new Error(`this runner runs javascript calls, not ${String(call.language)}`);
    // The source is the user's own function, run as that user in their job: nothing is widened by evaluating it.
    const fn = new Function(`return (${call.source});`)() as (...args: unknown[]) => unknown;
    if (typeof fn !== 'function') throw new TypeError('the shipped source is not a function');
    const value = await fn(...call.args);
    // What JSON cannot carry (undefined, functions) comes back as null rather than failing the call.
    result = { ok: true, value: value === undefined ? null : JSON.parse(JSON.stringify(value) ?? 'null') };
  } catch (err) {
    const e = err instanceof Error ? err : new Error(String(err));
    result = { ok: false, error: { name: e.name, message: e.message, stack: e.stack ?? `${e.name}: ${e.message}` } };
  }
  const tmp = join(folder, `${RESULT_FILE}.${process.pid}.tmp`);
  await writeFile(tmp, JSON.stringify(result), { mode: 0o600 });
  await rename(tmp, join(folder, RESULT_FILE));
  return result.ok ? 0 : 1;
}

const folder = process.argv[2];
if (!folder) {
  process.stderr.write('usage: run-call.js FOLDER\n');
  process.exitCode = 2;
} else {
  process.exitCode = await main(folder);
}
