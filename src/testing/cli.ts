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
