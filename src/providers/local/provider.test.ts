/**
 * The machine contract on real namespaces, bridges and iptables: the conformance suite run
 * against LocalProvider, then the fault-injecting wrapper over it. Needs root and the
 * packages scripts/setup.sh installs; no Slurm.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { LocalProvider } from './provider.js';
import { bridgeTrafficIsFiltered } from './network.js';
import { providerConformance, ScratchCluster } from '../conformance.js';
import { FaultyProvider } from '../faulty.js';
import { which } from '../../util/run.js';
import { leftoversOf } from '../../testing/harness.js';

providerConformance('local', () => new LocalProvider(), {
  // The init starts its idle `sleep` just after reporting the boot done, so a snapshot taken
  // right after createNodes may or may not have it yet: it is no resource of its own.
  leftovers: async (label) => (await leftoversOf(label.id)).filter((l) => !/^process \d+ sleep$/.test(l)),
  reportedResources: async () => [
    /process/,
    /^bridge /,
    ...((await bridgeTrafficIsFiltered()) && (await which('iptables')) ? [/^iptables rule /] : []),
  ],
  knownGaps: {},
});

describe('FaultyProvider over LocalProvider', () => {
  let parent = '';
  before(async () => {
    parent = await mkdtemp('/var/tmp/slurmkit-faulty-');
  });
  after(async () => {
    await rm(parent, { recursive: true, force: true });
  });

  test('bootFails: the nth node fails its boot, the request is undone, and the fault is spent', async (t) => {
    const faulty = new FaultyProvider(new LocalProvider(), [{ kind: 'bootFails', node: 1 }]);
    const c = await ScratchCluster.make(t, faulty, parent);
    await c.ensureNetwork();
    const nodes = [c.node('alpha', 0), c.node('beta', 1), c.node('gamma', 2)];
    await assert.rejects(c.create(nodes), /injected fault: boot of beta fails/);
    assert.deepEqual(await c.list(), []);
    assert.equal(faulty.fired.length, 1);
    await c.create(nodes);
    assert.deepEqual((await c.list()).map((n) => n.hostname), ['alpha', 'beta', 'gamma']);
  });

  test('reject and execResult: chosen exec calls fail, the others run', async (t) => {
    const faulty = new FaultyProvider(new LocalProvider(), [
      { kind: 'reject', method: 'exec', call: 1 },
      { kind: 'execResult', node: 'beta', result: { exitCode: 3, stderr: 'canned' } },
    ]);
    const c = await ScratchCluster.make(t, faulty, parent);
    await c.up([c.node('alpha', 0), c.node('beta', 1)]);
    assert.equal(await c.shOk('alpha', 'hostname'), 'alpha\n');
    await assert.rejects(c.sh('alpha', 'hostname'), (err: Error & { code?: string }) => err.code === 'COMMAND_FAILED');
    assert.deepEqual(await c.sh('beta', 'hostname'), { exitCode: 3, stdout: '', stderr: 'canned' });
    assert.equal(await c.shOk('beta', 'hostname'), 'beta\n');
    assert.deepEqual(faulty.pending, []);
  });

  test('reject ensureNetwork makes nothing; leftover shows in the report', async (t) => {
    const faulty = new FaultyProvider(new LocalProvider(), [
      { kind: 'reject', method: 'ensureNetwork' },
      { kind: 'leftover', resource: 'bridge stuck' },
    ]);
    const c = await ScratchCluster.make(t, faulty, parent);
    await assert.rejects(c.ensureNetwork(), /injected fault: ensureNetwork rejected/);
    assert.deepEqual(await leftoversOf(c.label.id), []);
    await c.up([c.node('alpha', 0)]);
    // The same scan sees this label's bridge and node once they exist, so the empty scan above means something.
    assert.ok((await leftoversOf(c.label.id)).some((l) => l.startsWith('bridge ')), 'leftoversOf sees the bridge');
    const report = await c.remove();
    assert.deepEqual(report.failed.map((f) => f.resource), ['bridge stuck']);
    assert.deepEqual(await leftoversOf(c.label.id), []);
  });
});
