/**
 * Clusters on provider swarm: three hosts (Docker engines in network namespaces of their own on
 * a bridge the test makes, src/testing/swarm.ts), in no swarm at first; `up` joins them into one,
 * puts the node image on each, and places the head and one worker per host; Slurm spans the
 * hosts; `down` leaves nothing of the cluster on any engine. Needs root and dockerd.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, readdir, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { dirname, join } from 'node:path';
import { down } from '../app/clusters.js';
import { cleanupHome, hostSnapshot, sh, shOk, useTempHome } from '../testing/harness.js';
import { runCli } from '../testing/cli.js';
import { haveDockerd } from '../testing/dockerd.js';
import { netnsNames, startTestSwarm, swarmLeftovers as onEngines, type TestSwarm } from '../testing/swarm.js';
import type Docker from 'dockerode';
import { requireState, type ClusterState } from './state.js';
import { homeTag } from './paths.js';
import { LABEL } from '../providers/docker/engine.js';
import { storageFor } from '../jobs/storage.js';
import { run, sleep } from '../util/run.js';

const skip = (await haveDockerd()) ? false : 'dockerd is not installed (scripts/setup.sh installs docker.io)';

describe('provider swarm: a cluster over three hosts', { skip }, () => {
  let swarm: TestSwarm;
  let home = '';
  let state: ClusterState | undefined;
  let hostBefore: Awaited<ReturnType<typeof hostSnapshot>>;
  let netnsBefore: string[];
  let specFile = '';
  /** An engine socket that takes connections and never answers (a host that hangs), and the hosts with it as h4. */
  let silent = '';
  let silentServer: Server | undefined;
  let withSilent = '';

  before(async () => {
    hostBefore = await hostSnapshot();
    netnsBefore = await netnsNames();
    home = await useTempHome();
    // With a registry on the hosts' network: the node image goes through it.
    swarm = await startTestSwarm(3, { join: false, registry: true });
    const hosts = swarm.hosts.map((h) => `    - {name: ${h.name}, endpoint: "${h.engine.host}"}`).join('\n');
    silent = join(home, 'silent.sock');
    silentServer = createServer(() => undefined);
    await new Promise<void>((resolve) => silentServer!.listen(silent, resolve));
    withSilent = [...swarm.hosts.map((h) => `{name: ${h.name}, endpoint: "${h.engine.host}"}`), `{name: h4, endpoint: "unix://${silent}"}`].join(', ');
    specFile = join(home, 'sw.yaml');
    await writeFile(specFile, `name: sw\nprovider:\n  type: swarm\n  registry: "${swarm.registry}"\n  hosts:\n${hosts}\nnodes: [{name: c, count: 3}]\nusers: [{name: alice}, {name: bob}]\nstorage: {blob: azurite}\n`);
  });

  after(async () => {
    if (state) await down(state.name, { force: true }).catch(() => undefined);
    silentServer?.close();
    await swarm?.stop();
    await cleanupHome(home);
  });

  test('a host whose engine never answers: up fails within the timeout naming it, and makes nothing on any host', { timeout: 60_000 }, async () => {
    const file = join(home, 'silent.yaml');
    await writeFile(file, `name: silent\nprovider: {type: swarm, hosts: [${withSilent}]}\nnodes: [{name: c, count: 4}]\nstorage: {blob: none}\n`);
    const r = await runCli(['up', '-f', file], { home });
    assert.equal(r.code, 5, r.stderr);
    // The node placed on h4 cannot run, and the group needs all four (no minNodes).
    assert.match(r.stderr, new RegExp(`host h4: its engine at unix://${silent.replace(/\./g, '\\.')} did not answer within 10 s; without it, group c would have 3 of its 4 nodes`));
    assert.match(r.stderr, /hint: bring h4 back \(slurmkit doctor -f <spec> checks each host\), or let up go on with fewer nodes: nodes\[\]\.minNodes/);
    assert.deepEqual(await runCli(['list', '--json'], { home }).then((l) => JSON.parse(l.stdout)), []);
    for (const h of swarm.hosts) {
      assert.deepEqual(await h.engine.docker.listContainers({ all: true, filters: { label: ['slurmkit.cluster=silent'] } }), []);
      // Nothing was joined to a swarm either.
      assert.equal(((await h.engine.docker.info()) as { Swarm: { LocalNodeState: string } }).Swarm.LocalNodeState, 'inactive');
    }
  });

  test('up joins the hosts into a swarm and places the head and one worker on each host; srun spans them', { timeout: 600_000 }, async () => {
    // A fourth host does not answer: with minNodes 3 of 4, up goes on without the worker placed there.
    const upFile = join(home, 'sw-up.yaml');
    await writeFile(upFile, (await readFile(specFile, 'utf8')).replace(/hosts:\n[\s\S]*?nodes: \[\{name: c, count: 3\}\]/, `hosts: [${withSilent}]\nnodes: [{name: c, count: 4, minNodes: 3}]`));
    const r = await runCli(['up', '-f', upFile], { home, timeoutMs: 580_000 });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /making a swarm with h1 as its manager/);
    // The node image went through the registry, and every engine has the same one.
    assert.match(r.stderr, new RegExp(`pushing slurmkit-node:\\S+ to ${swarm.registry!.replace(/\./g, '\\.')}`));
    assert.deepEqual(((await (await fetch(`http://${swarm.registry}/v2/_catalog`)).json()) as { repositories: string[] }).repositories, ['slurmkit-node']);
    const ids = await Promise.all(swarm.hosts.map(async (h) => (await h.engine.docker.listImages({ filters: { reference: ['slurmkit-node:*-*'] } })).map((i) => i.Id)));
    assert.equal(ids[0]!.length, 1);
    assert.deepEqual(ids, [ids[0], ids[0], ids[0]]);
    assert.match(r.stderr, /host h4: its engine at \S+ did not answer within 10 s\n.*going on without c4 \(every group keeps its minNodes\)/);
    const st = await requireState('sw');
    state = st;
    assert.deepEqual([st.nodes.map((n) => n.name), (st.hosts ?? []).map((h) => h.name)], [['head', 'c1', 'c2', 'c3'], ['h1', 'h2', 'h3']]);
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

  test('batch over three hosts: a user command converts each blob once, on workers of every host, with blob storage on the head', { timeout: 300_000 }, async () => {
    assert.ok(state, 'the cluster came up');
    // This machine is not on the overlay network: it reaches the head's Azurite where h1 publishes it.
    const storage = await storageFor('sw');
    await storage.mk('words');
    await storage.mk('upper');
    const names = Array.from({ length: 18 }, (_, i) => `w${String(i).padStart(2, '0')}.txt`);
    for (const n of names) await storage.putData('words', n, Buffer.from(`word ${n}\n`), { metadata: {}, contentType: 'text/plain' });
    const info = JSON.parse((await runCli(['blob', 'sw', 'info', '--json'], { home })).stdout) as { url: string };
    assert.match(info.url, new RegExp(`^http://${swarm.hosts[0]!.address.replace(/\./g, '\\.')}:\\d+/`));
    const batch = (...extra: string[]) =>
      runCli(['batch', 'sw', '--input', 'words', '--output', 'upper', '--json', ...extra, '--', 'bash', '-c', 'sleep 0.5; tr a-z A-Z < "$1" > "$2"', 'upper'], { home, timeoutMs: 240_000 });
    const r = await batch();
    assert.equal(r.code, 0, r.stderr);
    const summary = JSON.parse(r.stdout) as { total: number; converted: number; skipped: number; failed: unknown[]; perNode: Record<string, number> };
    assert.deepEqual([summary.total, summary.converted, summary.skipped, summary.failed], [18, 18, 0, []]);
    // Each blob counted once, and workers on every host took some.
    assert.equal(Object.values(summary.perNode).reduce((a, b) => a + b, 0), 18);
    assert.deepEqual(Object.keys(summary.perNode).sort(), ['c1', 'c2', 'c3']);
    const out = await storage.list('upper');
    assert.deepEqual(out.map((b) => b.name).sort(), names);
    assert.equal((await storage.getData('upper', 'w07.txt')).toString(), 'WORD W07.TXT\n');
    // Run again: every output is up to date, nothing runs twice.
    const again = JSON.parse((await batch()).stdout) as { converted: number; skipped: number };
    assert.deepEqual([again.converted, again.skipped], [0, 18]);
    // The batch folder (claims, status) is the head's work volume, served to every node: root's alone.
    assert.equal((await shOk(state, 'stat -f -c %T /var/lib/slurmkit; stat -c %a /var/lib/slurmkit', 'c2')).trim(), 'fuseblk\n700');
  });

  test('a host lost while the cluster runs: Slurm marks its node DOWN with the reason, list-nodes names the host, start waits for it and then brings the node back', { timeout: 420_000 }, async () => {
    assert.ok(state, 'the cluster came up');
    const st = state;
    const h3 = swarm.hosts[2]!;
    const pidfile = join(dirname(h3.engine.host.replace(/^unix:\/\//, '')), 'dockerd.pid');
    const dockerd = Number(await readFile(pidfile, 'utf8'));
    const c3 = (await h3.engine.docker.listContainers({ filters: { label: [`slurmkit.id=${st.id}`, 'slurmkit.node=c3'] } }))[0]!;
    const initPid = (await h3.engine.docker.getContainer(c3.Id).inspect()).State.Pid;
    // The host goes: off the network, its engine silent, its containers dead (as after a power cut).
    await run('ip', ['-n', h3.netns, 'link', 'set', 'eth0', 'down']);
    process.kill(dockerd, 'SIGSTOP');
    try {
      process.kill(initPid, 'SIGKILL');
      // Slurm finds out by itself: c3 stops answering and goes DOWN, with slurmctld's reason.
      const deadline = Date.now() + 150_000;
      let seen = '';
      while (!/^down\*?\|Not responding/.test(seen) && Date.now() < deadline) {
        await sleep(3000);
        seen = (await shOk(st, 'sinfo -h -n c3 -o "%T|%E"')).trim();
      }
      assert.match(seen, /^down\*?\|Not responding/);
      // list-nodes answers all the same, naming the host that does not.
      const listed = JSON.parse((await runCli(['list-nodes', 'sw', '--json'], { home, timeoutMs: 60_000 })).stdout) as { name: string; host: string; running: boolean; slurmState: string; reason: string | null }[];
      const byName = new Map(listed.map((n) => [n.name, n]));
      assert.deepEqual([byName.get('c3')?.running, byName.get('c3')?.host, byName.get('c3')?.reason], [false, 'h3', 'host h3 does not answer']);
      assert.deepEqual([byName.get('c2')?.running, byName.get('c2')?.slurmState, byName.get('c2')?.reason], [true, 'idle', null]);
      // start cannot bring it back while its host is gone: it says so and changes nothing.
      const early = await runCli(['start', 'sw'], { home, timeoutMs: 60_000 });
      assert.equal(early.code, 5, early.stderr);
      assert.match(early.stderr, /host h3: its engine at \S+ did not answer within 10 s/);
      assert.equal((await requireState('sw')).phase, 'running');
    } finally {
      process.kill(dockerd, 'SIGCONT');
      await run('ip', ['-n', h3.netns, 'link', 'set', 'eth0', 'up']);
    }
    // The host is back: start makes c3 again on it, and Slurm takes it back.
    const started = await runCli(['start', 'sw'], { home, timeoutMs: 240_000 });
    assert.equal(started.code, 0, started.stderr);
    assert.equal((await shOk(st, 'sinfo -h -n c3 -o %T')).trim(), 'idle');
    assert.equal((await shOk(st, 'srun -N1 -w c3 cat /home/alice/a.txt')).trim(), 'from-c2');
    const after_ = JSON.parse((await runCli(['list-nodes', 'sw', '--json'], { home })).stdout) as { name: string; host: string; running: boolean }[];
    assert.deepEqual(after_.map((n) => `${n.name}@${n.host}:${n.running}`), ['head@h1:true', 'c1@h1:true', 'c2@h2:true', 'c3@h3:true']);
  });

  test("a host cut off from the swarm's ports: doctor -f says which host and what to open, and is content once it is back", { timeout: 240_000 }, async () => {
    const h3 = swarm.hosts[2]!;
    const rules = [['-p', 'tcp', '--dport', '2377'], ['-p', 'tcp', '--dport', '7946'], ['-p', 'udp', '--dport', '7946']];
    const iptables = (op: string, rule: string[]) => run('nsenter', [`--net=/run/netns/${h3.netns}`, 'iptables', op, 'OUTPUT', ...rule, '-j', 'DROP']);
    const h3Swarm = async () => {
      const checks = JSON.parse((await runCli(['doctor', '-f', specFile, '--json'], { home, timeoutMs: 60_000 })).stdout) as { name: string; ok: boolean; detail: string; fix?: string }[];
      return checks.find((c) => c.name === 'host h3 swarm')!;
    };
    for (const rule of rules) await iptables('-I', rule);
    let seen: { ok: boolean; detail: string; fix?: string } | undefined;
    try {
      const deadline = Date.now() + 120_000;
      while ((seen = await h3Swarm()).ok && Date.now() < deadline) await sleep(3000);
    } finally {
      for (const rule of rules) await iptables('-D', rule);
    }
    assert.equal(seen.ok, false, seen.detail);
    assert.match(seen.detail, new RegExp(`^the swarm's manager counts \\S+ at ${h3.address.replace(/\./g, '\\.')} as down`));
    assert.match(seen.fix ?? '', /2377\/tcp .* 7946\/tcp and udp .* 4789\/udp/);
    // Back on the network, it rejoins by itself.
    const deadline = Date.now() + 120_000;
    while (!(seen = await h3Swarm()).ok && Date.now() < deadline) await sleep(3000);
    assert.equal(seen.ok, true, seen.detail);
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

  test('autoscaling across hosts: a 3-node job makes the nodes planned on h2 and h3, and they go again when idle', { timeout: 600_000 }, async () => {
    const file = join(home, 'swauto.yaml');
    await writeFile(
      file,
      (await readFile(specFile, 'utf8'))
        .replace('name: sw\n', 'name: swauto\n')
        .replace('nodes: [{name: c, count: 3}]', 'nodes: [{name: c, autoscale: {minNodes: 1, maxNodes: 3, idleTimeoutSeconds: 5}}]')
        .replace('storage: {blob: azurite}', 'storage: {blob: none}'),
    );
    const r = await runCli(['up', '-f', file], { home, timeoutMs: 580_000 });
    assert.equal(r.code, 0, r.stderr);
    const auto = await requireState('swauto');
    try {
      assert.deepEqual(auto.cloud?.map((n) => `${n.name}@${n.host}`), ['c2@h2', 'c3@h3']);
      const containers = async () => (await onEngines(swarm, auto.id)).filter((x) => x.includes(' container '));
      const job = await sh(auto, 'sbatch --wait -o /dev/null -N3 --wrap "srun -N3 true"');
      assert.equal(job.exitCode, 0, job.stderr);
      const shown = JSON.parse((await runCli(['show', 'swauto', '--json'], { home })).stdout) as { scaleEvents: { action: string; nodes: string; phases: { phase: string }[] }[] };
      const resume = shown.scaleEvents.find((e) => e.action === 'resume');
      assert.equal(resume?.nodes, 'c[2-3]', JSON.stringify(shown.scaleEvents));
      assert.deepEqual(resume.phases.map((p) => p.phase), ['node created', 'slurmd registered', 'job started']);
      // Idle for 5 s: the nodes on h2 and h3 are removed from their engines.
      const deadline = Date.now() + 90_000;
      let workers = await containers();
      while (workers.some((w) => w.startsWith('h2') || w.startsWith('h3')) && Date.now() < deadline) {
        await sleep(1_000);
        workers = await containers();
      }
      assert.equal(workers.some((w) => w.startsWith('h2') || w.startsWith('h3')), false, workers.join(', '));
    } finally {
      const d = await runCli(['down', 'swauto'], { home });
      assert.equal(d.code, 0, d.stderr);
    }
    assert.deepEqual(await onEngines(swarm, auto.id), []);
  });

  test('the demo on three hosts: 49 photos become grayscale over the 8 workers of lab, spread over every host, and the lab goes', { timeout: 900_000 }, async () => {
    const out = join(home, 'demo-out');
    const r = await runCli(['demo', '-f', specFile, '--out', out, '--json'], { home, timeoutMs: 880_000 });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /Creating cluster lab: 1 head \+ 8 workers \(provider swarm\)/);
    const result = JSON.parse(r.stdout) as { verified: number; batch: { converted: number; failed: unknown[]; perNode: Record<string, number> } };
    assert.equal(result.verified, 49);
    assert.deepEqual([result.batch.converted, result.batch.failed], [49, []]);
    assert.equal(Object.values(result.batch.perNode).reduce((a, b) => a + b, 0), 49);
    // Workers go over the hosts in turn (c1 beside the head on h1, c2 on h2, c3 on h3, c4 on h1, ...).
    const hostOf = (node: string) => `h${((Number(node.slice(1)) - 1) % 3) + 1}`;
    assert.deepEqual([...new Set(Object.keys(result.batch.perNode).map(hostOf))].sort(), ['h1', 'h2', 'h3']);
    assert.equal((await readdir(out)).length, 49);
    // The demo made lab, so it removed it: nothing of it on any engine.
    assert.deepEqual(JSON.parse((await runCli(['list', '--json'], { home })).stdout), []);
    for (const h of swarm.hosts) assert.deepEqual(await h.engine.docker.listContainers({ all: true, filters: { label: ['slurmkit.cluster=lab'] } }), []);
  });

  test('gc finds what a cluster whose folder is gone left on any host its home used', { timeout: 60_000 }, async () => {
    // As a cluster leaves it when its folder is deleted by hand: a labelled volume on h2.
    const labels = { [LABEL.home]: homeTag(), [LABEL.id]: 'dead00', [LABEL.cluster]: 'ghost' };
    const h2 = swarm.hosts[1]!.engine.docker;
    await h2.createVolume({ Name: 'sk-ghost-dead00-home', Labels: labels } as Docker.VolumeCreateOptions);
    const r = await runCli(['gc', '--json'], { home });
    assert.equal(r.code, 0, r.stderr);
    assert.ok((JSON.parse(r.stdout) as { removed: string[] }).removed.includes('volume sk-ghost-dead00-home on h2'), r.stdout);
    assert.deepEqual((await h2.listVolumes({ filters: { label: [`${LABEL.id}=dead00`] } })).Volumes ?? [], []);
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
