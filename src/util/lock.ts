import { spawn } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { SlurmkitError } from './errors.js';

/**
 * An exclusive lock on a file, held by the kernel (flock(2) through util-linux's flock(1)):
 * it is released the moment its holder exits, however it exits (SIGKILL, a crash, a full
 * disk), so there are no stale locks to guess about. The flock child holds the lock while
 * its stdin is open; it is ours alone and ends with us. The lock file's folder must exist:
 * a lock never creates the folder it guards.
 */
export interface HeldLock {
  release(): Promise<void>;
}

export interface LockOptions {
  /** How long to wait for the lock; 0 fails at once if another process holds it. */
  timeoutMs: number;
  /** What the lock guards, for the error message ("the state of cluster lab"). */
  what: string;
  /** Written into the lock file once held, so a process that finds it busy can say who holds it. */
  owner?: string;
}

/** Locks of this process, by file: flock(2) locks of one process on separate opens would not exclude each other's waits. */
const inProcess = new Map<string, Promise<void>>();

export async function acquireLock(file: string, opts: LockOptions): Promise<HeldLock> {
  // Callers in this process queue here first, so each lock has at most one flock child per process.
  const previous = inProcess.get(file) ?? Promise.resolve();
  let releaseLocal!: () => void;
  const mine = new Promise<void>((r) => (releaseLocal = r));
  const chained = previous.then(() => mine);
  inProcess.set(file, chained);
  const started = Date.now();
  try {
    if (opts.timeoutMs > 0) {
      await waitOrTimeout(previous, opts.timeoutMs, opts.what);
    } else if (!(await settled(previous))) {
      throw busy(opts.what, 'this process');
    }
    const held = await flock(file, opts.timeoutMs === 0 ? 0 : Math.max(1, opts.timeoutMs - (Date.now() - started)), opts.what);
    if (opts.owner) await writeFile(file, `${opts.owner}\n`, { mode: 0o600 }).catch(() => undefined);
    return {
      release: async () => {
        await held.release();
        releaseLocal();
        if (inProcess.get(file) === chained) inProcess.delete(file);
      },
    };
  } catch (err) {
    releaseLocal();
    if (inProcess.get(file) === chained) inProcess.delete(file);
    throw err;
  }
}

/** Runs fn while holding the lock. */
export async function withLock<T>(file: string, opts: LockOptions, fn: () => Promise<T>): Promise<T> {
  const lock = await acquireLock(file, opts);
  try {
    return await fn();
  } finally {
    await lock.release();
  }
}

async function settled(p: Promise<void>): Promise<boolean> {
  return Promise.race([p.then(() => true), new Promise<boolean>((r) => setImmediate(() => r(false)))]);
}

async function waitOrTimeout(p: Promise<void>, ms: number, what: string): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      p,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(busy(what, 'this process', ms)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

function busy(what: string, holder: string, waitedMs?: number): SlurmkitError {
  return new SlurmkitError('CONFLICT', `${what} is locked by ${holder}${waitedMs ? ` (waited ${Math.round(waitedMs / 1000)} s)` : ''}`, {
    hint: 'wait for the other slurmkit command to finish, then run this one again',
  });
}

function flock(file: string, timeoutMs: number, what: string): Promise<{ release(): Promise<void> }> {
  const wait = timeoutMs === 0 ? ['--nonblock'] : ['--timeout', String(timeoutMs / 1000)];
  // `cat` runs once the lock is held and echoes our byte back: that is the signal.
  const child = spawn('flock', ['--exclusive', ...wait, '--conflict-exit-code', '75', file, 'cat'], { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const exited = new Promise<number>((resolve) => {
    child.on('exit', (code) => resolve(code ?? 1));
    child.on('error', () => resolve(127));
  });
  child.stdin.on('error', () => undefined);
  return new Promise((resolve, reject) => {
    let held = false;
    child.stdout.once('data', () => {
      held = true;
      resolve({
        release: async () => {
          child.stdin.end();
          await exited;
        },
      });
    });
    child.stdin.write('.');
    void exited.then(async (code) => {
      if (held) return;
      if (code === 75) {
        const owner = (await readFile(file, 'utf8').catch(() => '')).trim();
        reject(busy(what, owner ? `another slurmkit command (${owner})` : 'another slurmkit command', timeoutMs || undefined));
      } else {
        reject(new SlurmkitError('COMMAND_FAILED', `could not lock ${file} (flock exited ${code}): ${stderr.trim()}`, {
          hint: code === 127 ? 'install util-linux (flock)' : 'check that the folder is writable',
        }));
      }
    });
  });
}
