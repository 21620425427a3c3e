/** The file lock: exclusive across processes, released by the kernel when its holder dies. */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { acquireLock } from './lock.js';
import { SlurmkitError } from './errors.js';

const LOCK_MODULE = fileURLToPath(new URL('./lock.js', import.meta.url));

/** A child process that takes the lock, says so, and holds it until killed. */
async function holder(file: string): Promise<{ kill(): Promise<void> }> {
  const script = `
    const { acquireLock } = await import(${JSON.stringify(LOCK_MODULE)});
    await acquireLock(process.argv[1], { timeoutMs: 5000, what: 'the test lock', owner: 'the holder, pid ' + process.pid });
    console.log('held');
    setInterval(() => {}, 1000);
  `;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script, file], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve, reject) => {
    child.stdout.once('data', () => resolve());
    child.once('exit', (code) => reject(new Error(`holder exited ${code}`)));
  });
  return {
    kill: () =>
      new Promise((resolve) => {
        child.once('exit', () => resolve());
        child.kill('SIGKILL');
      }),
  };
}

describe('file lock', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp('/var/tmp/slurmkit-lock-test-');
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  test('a lock another process holds is refused at once, naming the holder', async () => {
    const file = join(dir, 'a.lock');
    const h = await holder(file);
    try {
      const err = await acquireLock(file, { timeoutMs: 0, what: 'the test lock' }).then(
        () => assert.fail('the lock was given twice'),
        (e: unknown) => e as SlurmkitError,
      );
      assert.equal(err.code, 'CONFLICT');
      assert.match(err.message, /the test lock is locked by another slurmkit command \(the holder, pid \d+\)/);
    } finally {
      await h.kill();
    }
  });

  test('a holder killed with SIGKILL leaves no stale lock: the next taker gets it at once', async () => {
    const file = join(dir, 'b.lock');
    const h = await holder(file);
    await h.kill();
    const t0 = Date.now();
    const lock = await acquireLock(file, { timeoutMs: 5000, what: 'the test lock' });
    assert.ok(Date.now() - t0 < 1000, `took ${Date.now() - t0} ms`);
    await lock.release();
  });

  test('a waiter gets the lock as soon as the holder releases it, and not before', async () => {
    const file = join(dir, 'c.lock');
    const first = await acquireLock(file, { timeoutMs: 1000, what: 'the test lock' });
    let second = false;
    const waiting = acquireLock(file, { timeoutMs: 5000, what: 'the test lock' }).then((l) => {
      second = true;
      return l;
    });
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(second, false, 'two holders at once');
    await first.release();
    await (await waiting).release();
    assert.equal(second, true);
  });
});
