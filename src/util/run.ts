import { spawn, type SpawnOptions } from 'node:child_process';
import { SlurmkitError } from './errors.js';

/** Quote one argument for display in a POSIX shell (for "run this to retry" messages and logs). */
export function shellQuote(arg: string): string {
  if (arg !== '' && /^[A-Za-z0-9_@%+=:,./-]+$/.test(arg)) return arg;
  return `'${arg.replace(/'/g, `'\\''`)}'`;
}

export function commandLine(cmd: string, args: readonly string[]): string {
  return [cmd, ...args].map(shellQuote).join(' ');
}

export interface RunOptions {
  /** Text written to the command's stdin (never put secrets on the command line). */
  input?: string;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  timeoutMs?: number;
  /** Do not throw on a non-zero exit; return the result instead. */
  allowFailure?: boolean;
}

export interface RunResult {
  command: string;
  exitCode: number;
  stdout: string;
  stderr: string;
}

function tail(text: string, lines = 15): string {
  const all = text.trimEnd().split('\n');
  return all.slice(-lines).join('\n');
}

/**
 * The one way slurmkit runs an external command and waits for it. A failure reports
 * what ran, its exit code and the tail of its stderr.
 */
export function run(cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  const command = commandLine(cmd, args);
  return new Promise((resolve, reject) => {
    const spawnOpts: SpawnOptions = { stdio: ['pipe', 'pipe', 'pipe'], env: opts.env ?? process.env };
    if (opts.cwd !== undefined) spawnOpts.cwd = opts.cwd;
    const child = spawn(cmd, args, spawnOpts);
    let stdout = '';
    let stderr = '';
    let timer: NodeJS.Timeout | undefined;
    let timedOut = false;
    if (opts.timeoutMs !== undefined) {
      timer = setTimeout(() => {
        timedOut = true;
        child.kill('SIGKILL');
      }, opts.timeoutMs);
    }
    child.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', (err: NodeJS.ErrnoException) => {
      if (timer) clearTimeout(timer);
      const hint = err.code === 'ENOENT' ? `install the program "${cmd}" (see \`slurmkit doctor\`)` : undefined;
      reject(new SlurmkitError('COMMAND_FAILED', `could not run ${command}: ${err.message}`, hint ? { hint, cause: err } : { cause: err }));
    });
    child.on('close', (code, signal) => {
      if (timer) clearTimeout(timer);
      const exitCode = code ?? 128 + (signal ? 9 : 0);
      const result: RunResult = { command, exitCode, stdout, stderr };
      if (timedOut) {
        reject(new SlurmkitError('TIMEOUT', `${command} did not finish within ${opts.timeoutMs} ms`));
      } else if (exitCode !== 0 && !opts.allowFailure) {
        const detail = tail(stderr || stdout);
        reject(
          new SlurmkitError('COMMAND_FAILED', `${command} exited with ${exitCode}${detail ? `:\n${detail}` : ''}`),
        );
      } else {
        resolve(result);
      }
    });
    child.stdin!.on('error', () => {
      /* the command may exit before reading its input */
    });
    child.stdin!.end(opts.input ?? '');
  });
}

/** Finds a program on PATH, like `command -v`. */
export async function which(program: string): Promise<string | undefined> {
  const { access, constants } = await import('node:fs/promises');
  const dirs = (process.env.PATH ?? '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin').split(':');
  for (const dir of [...dirs, '/usr/sbin', '/sbin']) {
    const path = `${dir}/${program}`;
    try {
      await access(path, constants.X_OK);
      return path;
    } catch {
      /* keep looking */
    }
  }
  return undefined;
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * Polls `probe` until it returns a value other than undefined, or throws TIMEOUT with
 * `what` and the last observation, so the user sees why the wait ended.
 */
export async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined>,
  opts: { timeoutMs: number; intervalMs?: number; maxIntervalMs?: number; describe?: () => string; signal?: AbortSignal },
): Promise<T> {
  const deadline = Date.now() + opts.timeoutMs;
  let interval = opts.intervalMs ?? 50;
  for (;;) {
    if (opts.signal?.aborted) throw new SlurmkitError('INTERRUPTED', `interrupted while waiting for ${what}`);
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) {
      const last = opts.describe ? ` (last seen: ${opts.describe()})` : '';
      throw new SlurmkitError('TIMEOUT', `timed out after ${opts.timeoutMs} ms waiting for ${what}${last}`);
    }
    await sleep(interval);
    interval = Math.min(interval * 1.5, opts.maxIntervalMs ?? 500);
  }
}
