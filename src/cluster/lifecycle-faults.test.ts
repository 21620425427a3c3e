/**
 * The lifecycle's failure paths, driven by the fault-injecting provider over the real local
 * one (handed to the lifecycle through the provider registry): whatever fails, `up` leaves
 * nothing behind, `down` keeps the record and says how to retry, and the state stays valid.
 */
import { after, afterEach, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { resolveSpec } from '../spec/load.js';
import { down, gc, start, stop, up } from './lifecycle.js';
import { ClusterPaths } from './paths.js';
import { readState } from './state.js';
import { FaultyProvider, type Fault } from '../providers/faulty.js';
import { LocalProvider } from '../providers/local/provider.js';
import { overrideProvider } from '../providers/registry.js';
import { scanLabeledProcesses } from '../providers/local/procscan.js';
import { cleanupHome, leftoversOf, shOk, useTempHome } from '../testing/harness.js';
import { runCli } from '../testing/cli.js';
import { SlurmkitError } from '../util/errors.js';

const spec = (name: string) => {
  const raw = { name, nodes: [{ name: 'c', count: 2 }], storage: { blob: 'none' } };
  return { config: resolveSpec(raw, 'test'), specText: JSON.stringify(raw), readyTimeoutMs: 30_000 };
};

describe('lifecycle failure paths (fault-injecting provider)', () => {
  let home: string;
  let restore: (() => void) | undefined;
  const faulty = (faults: Fault[]) => {
    const p = new FaultyProvider(new LocalProvider(), faults);
    restore = overrideProvider('local', p).restore;
    return p;
  };
  before(async () => {
    home = await useTempHome();
  });
  afterEach(() => {
    restore?.();
    restore = undefined;
  });
  after(async () => {
    await cleanupHome(home);
  });

  async function assertNothingOf(name: string): Promise<void> {
    assert.equal(existsSync(ClusterPaths.of(name).root), false, 'the cluster folder is gone');
    assert.deepEqual((await scanLabeledProcesses()).filter((p) => p.clusterName === name), [], 'no process of it runs');
  }

  for (const [what, fault] of [
    ['a worker fails to boot', { kind: 'bootFails', node: 'c2' }],
    ['creating the workers is refused', { kind: 'reject', method: 'createNodes', call: 1 }],
    ['the network cannot be made', { kind: 'reject', method: 'ensureNetwork' }],
  ] as const) {
    test(`up where ${what} fails with the cause and leaves nothing`, async () => {
      const p = faulty([fault as Fault]);
      const err = await up(spec('tfault')).then(
        () => assert.fail('up should fail'),
        (e: unknown) => e as SlurmkitError,
      );
      assert.equal(p.fired.length, 1, 'the fault fired');
      assert.equal(err.code, 'COMMAND_FAILED');
      assert.match(err.message, /c2|injected fault/);
      await assertNothingOf('tfault');
    });
  }

  test('up that times out waiting for idle says so, and removes what it made', async () => {
    // Every sinfo answers "not ready": the wait runs out.
    faulty([{ kind: 'execResult', result: { exitCode: 1, stderr: 'injected' }, times: Infinity }]);
    const err = await up({ ...spec('tslow'), readyTimeoutMs: 1500 }).then(
      () => assert.fail('up should time out'),
      (e: unknown) => e as SlurmkitError,
    );
    assert.ok(['TIMEOUT', 'COMMAND_FAILED'].includes(err.code), `${err.code}: ${err.message}`);
    await assertNothingOf('tslow');
  });

  test('down that cannot remove a resource keeps the record, names the resource and the retry, and a second down finishes', async () => {
    const state = await up(spec('tleft'));
    faulty([{ kind: 'leftover', resource: 'bridge skstuck' }]);
    const err = await down('tleft').then(
      () => assert.fail('down should report the leftover'),
      (e: unknown) => e as SlurmkitError,
    );
    assert.equal(err.code, 'CLEANUP_INCOMPLETE');
    assert.ok(err.details.some((d) => d.includes('bridge skstuck') && d.includes('retry')), err.details.join('\n'));
    assert.equal((await readState('tleft'))?.phase, 'destroying', 'the record is kept, valid, for the retry');
    restore?.();
    restore = undefined;
    assert.equal((await down('tleft')).existed, true);
    await assertNothingOf('tleft');
    assert.deepEqual(await leftoversOf(state.id), []);
  });

  test('start that fails to bring a node back reports it, and a later start recovers', async () => {
    await up(spec('trestart'));
    await stop('trestart');
    faulty([{ kind: 'bootFails', node: 'c1' }]);
    await assert.rejects(start('trestart'), /c1/);
    restore?.();
    restore = undefined;
    const again = await start('trestart');
    assert.equal(again.phase, 'running');
    const s = (await readState('trestart'))!;
    assert.equal((await shOk(s, 'srun -N2 hostname | sort')).trim(), 'c1\nc2');
    await down('trestart');
  });

  test('a second lifecycle command on a busy cluster is refused at once, naming the first', async () => {
    await up(spec('tbusy'));
    // stop holds the cluster for 3 s longer than usual, inside its first phase.
    faulty([{ kind: 'delay', method: 'destroyNodes', ms: 3000 }]);
    const stopping = stop('tbusy');
    await new Promise((r) => setTimeout(r, 500));
    const t0 = Date.now();
    const second = await runCli(['start', 'tbusy']);
    assert.equal(second.code, 4, second.stderr);
    assert.match(second.stderr, /cluster tbusy is locked by another slurmkit command \(slurmkit stop, pid \d+/);
    assert.ok(Date.now() - t0 < 2500, 'refused at once, not after waiting');
    assert.equal((await stopping).phase, 'stopped');
    restore?.();
    restore = undefined;
    await down('tbusy');
    await assertNothingOf('tbusy');
  });

  test('down --force while another command holds the cluster stops that command first, then removes everything', async () => {
    // A real `up` in its own process, stopped by down --force while its head starts MariaDB
    // (seconds: long enough for down to find it still running).
    const file = join(home, 'tforce.yaml');
    await writeFile(file, 'name: tforce\nnodes: [{name: c, count: 1}]\naccounting: true\nstorage: {blob: none}\n');
    let forced: Promise<{ code: number | null; stderr: string }> | undefined;
    const making = runCli(['up', '-f', file], {
      onStderr: (text) => {
        if (!forced && text.includes('✓ network')) forced = runCli(['down', 'tforce', '--force']);
      },
    });
    const made = await making;
    assert.ok(forced, `up never reached its network phase: ${made.stderr}`);
    const removed = await forced!;
    assert.equal(removed.code, 0, removed.stderr);
    assert.match(removed.stderr, /stopping slurmkit up \(pid \d+\)/);
    assert.notEqual(made.code, 0, 'the up was stopped');
    await assertNothingOf('tforce');
  });

  test('gc after all this finds nothing of this home', async () => {
    assert.deepEqual((await gc()).found, []);
  });
});
