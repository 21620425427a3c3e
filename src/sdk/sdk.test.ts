/** The SDK as a program uses it, imported by the package's name, against a real server and cluster. */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, RemoteError, SlurmkitApiError, type Client, type Cluster } from 'slurmkit';
import { cleanupHome, useTempHome } from '../testing/harness.js';
import { startServer, type RunningServer } from '../server/serve.js';

describe('SDK: connect, create, submit, wait, output, run(fn)', () => {
  let home: string;
  let server: RunningServer;
  let sk: Client;
  let cluster: Cluster;

  before(async () => {
    home = await useTempHome();
    server = await startServer({ port: 0 });
    sk = connect({ url: server.url, token: server.newToken! });
  });
  after(async () => {
    await server?.close();
    await cleanupHome(home);
  });

  test('clusters.create resolves once the cluster is running, reporting its phases', async () => {
    const phases: string[] = [];
    cluster = await sk.clusters.create({ spec: 'name: tsdk\nnodes: [{name: c, count: 2}]\nusers: [{name: alice}]\n' }, (e) => {
      if (e.type === 'phase') phases.push(e.phase);
    });
    assert.equal(cluster.name, 'tsdk');
    assert.ok(phases.length >= 3, phases.join(', '));
    assert.deepEqual((await sk.clusters.list()).map((c) => [c.name, c.phase]), [['tsdk', 'running']]);
    const workers = (await cluster.nodes()).filter((n) => n.role === 'worker');
    assert.deepEqual(workers.map((n) => n.slurmState), ['idle', 'idle']);
  });

  test('submit, wait and output: a two-node job as alice', async () => {
    const job = await cluster.submit('#!/bin/bash\n#SBATCH -N2\nsrun hostname | sort\nid -un\n', { user: 'alice' });
    const done = await job.wait({ timeoutMs: 60_000 });
    assert.equal(done.state, 'COMPLETED');
    assert.equal(await job.output(), 'c1\nc2\nalice\n');
  });

  test('run(fn, ...args) computes on a node inside a Slurm job and returns the value', async () => {
    assert.equal(await cluster.run((a: number, b: number) => a * b, 6, 7), 42);
    const where = await cluster.run(async (tag: string) => {
      const os = await import('node:os');
      return { tag, host: os.hostname(), job: process.env['SLURM_JOB_ID'] ?? null, uid: process.getuid?.() ?? -1 };
    }, 'x');
    assert.equal(where.tag, 'x');
    assert.match(where.host, /^c[12]$/, 'it ran on a worker, not here');
    assert.match(String(where.job), /^\d+$/, 'inside a Slurm job');
    assert.equal(where.uid, 0, 'as root by default');
    const alice = await cluster.runWith({ user: 'alice' }, () => process.env['USER'] ?? null);
    assert.equal(alice, 'alice');
  });

  test('an exception on the node comes back as a RemoteError with its stack; the job shows FAILED', async () => {
    const err = await cluster.run(function deepThought(answer: number) {
      throw new RangeError(`not ${answer}`);
    }, 41).then(
      () => assert.fail('run should have thrown'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof RemoteError, String(err));
    assert.equal(err.remoteName, 'RangeError');
    assert.equal(err.message, 'not 41');
    assert.match(err.remoteStack, /RangeError: not 41\n\s+at deepThought/);
    assert.equal((await cluster.job(err.job).info()).state, 'FAILED');
  });

  test('API errors carry the stable code and status', async () => {
    const err = await sk.clusters.get('nosuch').info().catch((e: unknown) => e);
    assert.ok(err instanceof SlurmkitApiError);
    assert.deepEqual([err.status, err.code], [404, 'NOT_FOUND']);
    const wrong = connect({ url: server.url, token: 'skt_nope' });
    const denied = await wrong.clusters.list().catch((e: unknown) => e);
    assert.ok(denied instanceof SlurmkitApiError);
    assert.deepEqual([denied.status, denied.code], [401, 'UNAUTHORIZED']);
  });

  test('destroy takes it down', async () => {
    await cluster.destroy();
    assert.deepEqual(await sk.clusters.list(), []);
  });
});
