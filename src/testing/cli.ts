/** The CLI in a child process, as a user runs it: for tests and the fault suite. */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/** The built CLI entry point. */
const CLI_MAIN = fileURLToPath(new URL('../cli/main.js', import.meta.url));
/** The launcher a user runs (bin/slurmkit), for tests of the command as installed. */
const BIN = fileURLToPath(new URL('../../bin/slurmkit', import.meta.url));

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface CliOptions {
  /** SLURMKIT_HOME for this run (default: the caller's). */
  home?: string;
  /** Extra environment; an undefined value removes the variable. */
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Killed with SIGKILL after this long (default 120 s); code is then null. */
  timeoutMs?: number;
  /** Through bin/slurmkit instead of node and the built entry point. */
  bin?: boolean;
  /** Called with all stderr so far on every chunk; `kill` ends the CLI with SIGKILL. */
  onStderr?: (text: string, kill: () => void) => void;
}

/** Never throws: a broken CLI fails assertions, not the harness. */
export function runCli(args: string[], opts: CliOptions = {}): Promise<CliResult> {
  const env: NodeJS.ProcessEnv = { ...process.env, ...(opts.home ? { SLURMKIT_HOME: opts.home } : {}), ...opts.env };
  // The test runner marks its children; the CLI is not a test file.
  delete env.NODE_TEST_CONTEXT;
  for (const [k, v] of Object.entries(opts.env ?? {})) if (v === undefined) delete env[k];
  return new Promise((resolve) => {
    const [cmd, argv] = opts.bin ? [BIN, args] : [process.execPath, [CLI_MAIN, ...args]];
    const child = spawn(cmd, argv, { env, cwd: opts.cwd ?? opts.home ?? process.cwd(), stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    const kill = () => child.kill('SIGKILL');
    const timer = setTimeout(kill, opts.timeoutMs ?? 120_000);
    child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
    child.stderr.setEncoding('utf8').on('data', (c: string) => {
      stderr += c;
      opts.onStderr?.(stderr, kill);
    });
    child.on('error', (err) => {
      clearTimeout(timer);
      resolve({ code: null, stdout, stderr: `${stderr}\nspawn failed: ${err.message}` });
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/**
 * The CLI as a user runs it at a terminal: inside a pseudo-terminal (util-linux `script`), typing
 * `keys`. Its exit code and everything the terminal showed. stdin stays open until it exits, as
 * a user's keyboard does.
 */
export function runInTerminal(args: string[], keys: string, opts: Pick<CliOptions, 'home' | 'timeoutMs'> = {}): Promise<{ code: number | null; screen: string }> {
  const env: NodeJS.ProcessEnv = { ...process.env, ...(opts.home ? { SLURMKIT_HOME: opts.home } : {}), TERM: 'dumb' };
  delete env.NODE_TEST_CONTEXT;
  const q = (a: string) => `'${a.replace(/'/g, `'\\''`)}'`;
  return new Promise((resolve) => {
    const child = spawn('script', ['-q', '-e', '-c', [BIN, ...args].map(q).join(' '), '/dev/null'], { env, stdio: ['pipe', 'pipe', 'pipe'] });
    let screen = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 60_000);
    child.stdout.setEncoding('utf8').on('data', (c: string) => (screen += c));
    child.stderr.setEncoding('utf8').on('data', (c: string) => (screen += c));
    child.stdin.write(keys);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, screen });
    });
  });
}
