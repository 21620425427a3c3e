/**
 * Clusters on provider swarm: three hosts (Docker engines in network namespaces of their own on
 * a bridge the test makes, src/testing/swarm.ts), in no swarm at first; `up` joins them into one,
 * puts the node image on each, and places the head and one worker per host; Slurm spans the
 * hosts; `down` leaves nothing of the cluster on any engine. Needs root and dockerd.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { down } from '../app/clusters.js';
import { cleanupHome, hostSnapshot, sh, shOk, useTempHome } from '../testing/harness.js';
import { runCli } from '../testing/cli.js';
import { haveDockerd } from '../testing/dockerd.js';
import { netnsNames, startTestSwarm, type TestSwarm } from '../testing/swarm.js';
import { requireState, type ClusterState } from './state.js';

const skip = (await haveDockerd()) ? false : 'dockerd is not installed (scripts/setup.sh installs docker.io)';

/** Everything on any engine that carries this cluster's id. */
async function onEngines(swarm: TestSwarm, id: string): Promise<string[]> {
  const filters = { label: [`slurmkit.id=${id}`] };
  const found = await Promise.all(
    swarm.hosts.map(async (h) => {
      const d = h.engine.docker;
      const [c, n, v] = await Promise.all([d.listContainers({ all: true, filters }), d.listNetworks({ filters }), d.listVolumes({ filters })]);
      return [...c.map((x) => `${h.name} container ${x.Names[0]}`), ...n.map((x) => `${h.name} network ${x.Name}`), ...(v.Volumes ?? []).map((x) => `${h.name} volume ${x.Name}`)];
    }),
  );
  return found.flat();
}

describe('provider swarm: a cluster over three hosts', { skip }, () => {
  let swarm: TestSwarm;
  let home = '';
  let state: ClusterState | undefined;
  let hostBefore: Awaited<ReturnType<typeof hostSnapshot>>;
  let netnsBefore: string[];
  let specFile = '';

  before(async () => {
    hostBefore = await hostSnapshot();
    netnsBefore = await netnsNames();
    home = await useTempHome();
    swarm = await startTestSwarm(3, { join: false });
    const hosts = swarm.hosts.map((h) => `    - {name: ${h.name}, endpoint: "${h.engine.host}"}`).join('\n');
    specFile = join(home, 'sw.yaml');
    await writeFile(specFile, `name: sw\nprovider:\n  type: swarm\n  hosts:\n${hosts}\nnodes: [{name: c, count: 3}]\nusers: [{name: alice}, {name: bob}]\nstorage: {blob: none}\n`);
  });

  after(async () => {
    if (state) await down(state.name, { force: true }).catch(() => undefined);
    await swarm?.stop();
    await cleanupHome(home);
  });

  test('a host whose engine never answers: up fails within the timeout naming it, and makes nothing on any host', { timeout: 60_000 }, async () => {
    // An engine socket that takes connections and never answers.
    const silent = join(home, 'silent.sock');
    const server = createServer(() => undefined);
    await new Promise<void>((resolve) => server.listen(silent, resolve));
    try {
      const file = join(home, 'silent.yaml');
      const hosts = [...swarm.hosts.map((h) => `{name: ${h.name}, endpoint: "${h.engine.host}"}`), `{name: h4, endpoint: "unix://${silent}"}`];
      await writeFile(file, `name: silent\nprovider: {type: swarm, hosts: [${hosts.join(', ')}]}\nnodes: [{name: c, count: 4}]\nstorage: {blob: none}\n`);
      const r = await runCli(['up', '-f', file], { home });
      assert.equal(r.code, 5, r.stderr);
      assert.match(r.stderr, new RegExp(`host h4: its engine at unix://${silent.replace(/\./g, '\\.')} did not answer within 10 s`));
      assert.match(r.stderr, /run `slurmkit doctor -f <spec>`/);
      assert.deepEqual(await runCli(['list', '--json'], { home }).then((l) => JSON.parse(l.stdout)), []);
      for (const h of swarm.hosts) {
        assert.deepEqual(await h.engine.docker.listContainers({ all: true, filters: { label: ['slurmkit.cluster=silent'] } }), []);
        // Nothing was joined to a swarm either.
        assert.equal(((await h.engine.docker.info()) as { Swarm: { LocalNodeState: string } }).Swarm.LocalNodeState, 'inactive');
      }
    } finally {
      server.close();
    }
  });

  test('up joins the hosts into a swarm and places the head and one worker on each host; srun spans them', { timeout: 600_000 }, async () => {
    const r = await runCli(['up', '-f', specFile], { home, timeoutMs: 580_000 });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /making a swarm with h1 as its manager/);
    const st = await requireState('sw');
    state = st;
    // One swarm: h1 manages it, every host is a member, labelled with its name from the spec.
    const nodes = (await swarm.hosts[0]!.engine.docker.listNodes()) as { Spec: { Role: string; Labels?: Record<string, string> }; Status: { Addr: string } }[];
    assert.deepEqual(nodes.map((n) => `${n.Spec.Labels?.['slurmkit.host']} ${n.Spec.Role} ${n.Status.Addr}`).sort(), swarm.hosts.map((h, i) => `${h.name} ${i === 0 ? 'manager' : 'worker'} ${h.address}`));
    // Each node runs on the host list-nodes names: its container is on that host's engine.
    const listed = JSON.parse((await runCli(['list-nodes', 'sw', '--json'], { home })).stdout) as { name: string; host: string; running: boolean; slurmState: string | null }[];
    assert.deepEqual(listed.map((n) => `${n.name}@${n.host}`), ['head@h1', 'c1@h1', 'c2@h2', 'c3@h3']);
    for (const n of listed) {
      const engine = swarm.hosts.find((h) => h.name === n.host)!.engine.docker;
      const here = await engine.listContainers({ filters: { label: [`slurmkit.id=${st.id}`, `slurmkit.node=${n.name}`] } });
      assert.equal(here.length, 1, `${n.name} on ${n.host}`);
      assert.equal(n.running, true);
      if (n.name !== 'head') assert.equal(n.slurmState, 'idle');
    }
    // doctor checks every host of the spec: its engine, its place in the swarm, the image.
    const doctor = await runCli(['doctor', '-f', specFile, '--json'], { home });
    const checks = JSON.parse(doctor.stdout) as { name: string; ok: boolean; detail: string }[];
    for (const [i, h] of swarm.hosts.entries()) {
      assert.match(checks.find((c) => c.name === `host ${h.name} swarm`)?.detail ?? '', new RegExp(`^${i === 0 ? 'manager' : 'worker'} \\S+ at ${h.address.replace(/\./g, '\\.')}$`));
      assert.match(checks.find((c) => c.name === `host ${h.name} node image`)?.detail ?? '', /is in the engine/);
    }
    const table = (await runCli(['list-nodes', 'sw'], { home })).stdout;
    assert.match(table, /^NODE\s+ROLE\s+HOST\s+ADDRESS/m);
    // The cluster network is one attachable overlay network of the swarm.
    const net = await swarm.hosts[0]!.engine.docker.getNetwork(`sk-sw-${st.id}`).inspect();
    assert.equal(net.Driver, 'overlay');
    assert.equal(net.Scope, 'swarm');
    assert.equal(net.Labels?.['slurmkit.id'], st.id);
    // Slurm spans the hosts: one job step on every worker, and nodes on different hosts talk.
    assert.deepEqual((await shOk(st, 'srun -N3 hostname')).trim().split('\n').sort(), ['c1', 'c2', 'c3']);
    assert.equal((await shOk(st, 'srun -N1 -w c3 bash -c "getent hosts c2 | cut -d\\" \\" -f1"')).trim(), st.network.addresses.c2);
  });

  test('/home and /shared are the same on every host: two users\' files with their uids, private homes stay private, kept over stop and start', { timeout: 300_000 }, async () => {
    assert.ok(state, 'the cluster came up');
    const st = state;
    const uid = (user: string) => shOk(st, `id -u ${user}`).then((s) => s.trim());
    const [alice, bob] = [await uid('alice'), await uid('bob')];
    // Each user writes on a worker of another host; every node sees both files, owned by their writers.
    await shOk(st, 'runuser -u alice -- bash -c "echo from-c2 > ~/a.txt"', 'c2');
    await shOk(st, 'runuser -u bob -- bash -c "echo from-c3 > /shared/b.txt"', 'c3');
    for (const node of ['head', 'c1', 'c2', 'c3']) {
      assert.equal(await shOk(st, 'cat /home/alice/a.txt /shared/b.txt; stat -c "%u %a" /home/alice/a.txt /home/alice /shared/b.txt', node), `from-c2\nfrom-c3\n${alice} 644\n${alice} 700\n${bob} 644\n`, node);
    }
    // Served by the head's GlusterFS, mounted on every node.
    assert.match(await shOk(st, 'stat -f -c %T /home /shared', 'c3'), /^fuseblk\nfuseblk\n$/);
    const peek = await sh(st, 'runuser -u bob -- cat /home/alice/a.txt', 'c1');
    assert.notEqual(peek.exitCode, 0, 'bob read alice\'s home');
    // Through a job as well: the user's job on c3 reads what she wrote on c2.
    assert.equal((await shOk(st, 'runuser -u alice -- srun -w c3 cat /home/alice/a.txt')).trim(), 'from-c2');
    // stop removes every node; start makes them again on their hosts: the files are there.
    assert.equal((await runCli(['stop', 'sw'], { home, timeoutMs: 120_000 })).code, 0);
    const started = await runCli(['start', 'sw'], { home, timeoutMs: 240_000 });
    assert.equal(started.code, 0, started.stderr);
    assert.equal(await shOk(st, 'cat /home/alice/a.txt /shared/b.txt; stat -c %u /home/alice/a.txt', 'c3'), `from-c2\nfrom-c3\n${alice}\n`);
    // Each node came back on its host.
    const listed = JSON.parse((await runCli(['list-nodes', 'sw', '--json'], { home })).stdout) as { name: string; host: string }[];
    assert.deepEqual(listed.map((n) => `${n.name}@${n.host}`), ['head@h1', 'c1@h1', 'c2@h2', 'c3@h3']);
  });

  test('down removes everything of the cluster from every engine, and the hosts stay in their swarm', { timeout: 120_000 }, async () => {
    assert.ok(state, 'the cluster came up');
    const id = state.id;
    assert.ok((await onEngines(swarm, id)).some((r) => r.startsWith('h3 container')), 'the cluster had a node on h3');
    const r = await runCli(['down', 'sw'], { home });
    assert.equal(r.code, 0, r.stderr);
    state = undefined;
    assert.deepEqual(await onEngines(swarm, id), []);
    for (const h of swarm.hosts) assert.equal(((await h.engine.docker.info()) as { Swarm: { LocalNodeState: string } }).Swarm.LocalNodeState, 'active');
  });

  test('after the test swarm stops, this machine is as it was', async () => {
    await swarm.stop();
    assert.deepEqual(await netnsNames(), netnsBefore);
    const after_ = await hostSnapshot();
    assert.deepEqual(after_.links, hostBefore.links);
    assert.equal(after_.mounts, hostBefore.mounts);
    assert.deepEqual(after_.files, hostBefore.files);
  });
});
