/**
 * Clusters on provider docker, from the outside: an engine that does not answer, a docker
 * cluster beside a local one on an engine that sets the FORWARD policy to DROP (as Docker does
 * on users' machines), and `down` leaving nothing of either and only its own rules gone. Runs on an engine of its own
 * (Debian's dockerd) and, for the local cluster, the namespaces of this machine: needs root.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { down, start, stop, up } from '../app/clusters.js';
import { parseSpec } from '../spec/load.js';
import { cleanupHome, hostSnapshot, leftoversOf, shOk, useTempHome } from '../testing/harness.js';
import { runCli, runInTerminal } from '../testing/cli.js';
import { engineLeftovers, useTestEngine } from '../testing/dockerd.js';

// An engine as on a user's machine: it turns ip_forward on and the FORWARD policy to DROP.
const { skip, engine } = await useTestEngine({ before, after }, { ipForward: true });

const specText = (name: string, provider: string) => `name: ${name}\nprovider: ${provider}\nnodes: [{name: c, count: 2}]\nstorage: {blob: none}\n`;
const spec = (name: string, provider: string) => ({ config: parseSpec(specText(name, provider), 'test'), specText: specText(name, provider) });

describe('provider docker: clusters', { skip }, () => {
  let home = '';
  before(async () => {
    home = await useTempHome();
  });
  after(async () => {
    await cleanupHome(home);
  });

  test('an engine that does not answer: up fails naming it and the fix, and changes nothing', async () => {
    const nowhere = 'unix:///var/tmp/slurmkit-no-engine.sock';
    const r = await runCli(['up', '-t', 'minimal', '-n', 'nowhere', '--provider', 'docker'], { home, env: { DOCKER_HOST: nowhere } });
    assert.equal(r.code, 5, r.stderr);
    assert.ok(r.stderr.includes(`no Docker engine answers at ${nowhere}`), r.stderr);
    assert.match(r.stderr, /fix: start one .*DOCKER_HOST/);
    assert.match(r.stderr, /slurmkit doctor --provider docker/);
    assert.deepEqual(await readdir(join(home, 'clusters')).catch(() => []), []);
    const docker = engine().docker;
    const filters = { label: ['slurmkit.cluster=nowhere'] };
    assert.deepEqual([...(await docker.listContainers({ all: true, filters })), ...(await docker.listNetworks({ filters }))], []);
  });

  test('a docker cluster runs beside a local one; down of each leaves nothing of it and the host as it was', { timeout: 180_000 }, async () => {
    const before_ = await hostSnapshot();
    // What breaks other bridges: local clusters must work through it with their own rule.
    assert.match(before_.forward, /^-P FORWARD DROP$/m);
    const [dk, lc] = await Promise.all([up(spec('dk', 'docker')), up(spec('lc', 'local'))]);
    assert.equal(dk.provider, 'docker');
    assert.equal(lc.provider, 'local');
    for (const state of [dk, lc]) {
      assert.deepEqual((await shOk(state, 'srun -N2 hostname')).trim().split('\n').sort(), ['c1', 'c2'], state.name);
    }
    // The docker cluster's nodes are containers of its own network, named by the cluster.
    const docker = engine().docker;
    const containers = await docker.listContainers({ filters: { label: [`slurmkit.id=${dk.id}`] } });
    assert.deepEqual(containers.map((c) => c.Labels['slurmkit.node']).sort(), ['c1', 'c2', 'head']);
    assert.ok(containers.every((c) => c.Names[0] === `/sk-dk-${dk.id}-${c.Labels['slurmkit.node']}`), JSON.stringify(containers.map((c) => c.Names)));
    // Nodes talk to each other and this machine: no address translation to the outside, and names
    // the cluster does not know go to its gateway (nothing answers there), not to the host's servers.
    const net = await docker.getNetwork(`sk-dk-${dk.id}`).inspect();
    assert.equal(net.Options?.['com.docker.network.bridge.enable_ip_masquerade'], 'false');
    assert.equal(net.Labels?.['slurmkit.id'], dk.id);
    for (const c of containers) assert.deepEqual((await docker.getContainer(c.Id).inspect()).HostConfig.Dns, [dk.network.gateway]);
    // Workers share no folder with this machine for Slurm: each runs its own munged with the
    // cluster's key, placed at start into memory (root's, 0400), and fetched slurm.conf from
    // slurmctld (configless); the staged copy of the key is gone.
    assert.equal(
      await shOk(dk, 'stat -c "%a %U" /etc/munge/munge.key; stat -f -c %T /etc/munge; pgrep -x munged >/dev/null && echo munged; test -e /etc/slurm/slurm.conf || echo no-local-conf; test -s /run/slurm/conf/slurm.conf && echo fetched; ls -A /.slurmkit', 'c1'),
      '400 root\ntmpfs\nmunged\nno-local-conf\nfetched\nboot\n',
    );
    assert.equal(await shOk(dk, 'sinfo -h -o %D', 'c2'), '2\n', 'a client on a worker reads the fetched configuration');
    assert.equal((await shOk(dk, 'stat -c "%a %U" /etc/munge/munge.key /etc/slurm/slurm.conf')).trim(), '400 root\n644 root');
    // A node binds nothing of this machine: Slurm's and munge's files, names, accounts, logs,
    // secrets and batch folders come as placed files or volumes, slurmkit's program in the image.
    for (const c of containers) {
      const binds = (await docker.getContainer(c.Id).inspect()).Mounts.filter((m) => m.Type === 'bind').map((m) => `${m.Source} on ${m.Destination}`);
      assert.deepEqual(binds, [], `${c.Labels['slurmkit.node']} binds ${binds.join(', ')}`);
    }
    assert.equal(await shOk(dk, `${process.execPath} -e 'console.log(process.version)'`, 'c2'), `${process.version}\n`, 'the image has this Node.js');
    // A node's system accounts are its image's (their ids need not be this machine's): the
    // image's munge files show munge as their owner; /etc/hosts names every node.
    assert.equal(await shOk(dk, 'stat -c %U /var/lib/munge; getent hosts c2 | cut -d" " -f1', 'c1'), `munge\n${dk.nodes.find((n) => n.name === 'c2')!.address}\n`);

    // stop keeps the cluster's volumes (shared folders, the head's Slurm state): files and the queue are there after start.
    await shOk(dk, 'echo kept > /shared/file && sbatch -H --wrap hostname >/dev/null');
    await stop('dk');
    assert.deepEqual((await docker.listContainers({ all: true, filters: { label: [`slurmkit.id=${dk.id}`] } })).length, 0, 'stop left containers');
    assert.deepEqual(
      (await engineLeftovers(docker, dk.id)).sort(),
      ['home', 'logs', 'shared', 'slurm-state', 'work'].map((v) => `volume sk-dk-${dk.id}-${v}`),
    );
    const again = await start('dk');
    assert.equal(await shOk(again, 'cat /shared/file', 'c2'), 'kept\n');
    assert.equal((await shOk(again, 'squeue -h -o "%j %T %r"')).trim(), 'wrap PENDING JobHeldUser');

    await down('dk');
    assert.deepEqual(await engineLeftovers(docker, dk.id), []);
    assert.deepEqual((await shOk(lc, 'srun -N2 hostname')).trim().split('\n').sort(), ['c1', 'c2'], 'the local cluster lost its nodes');
    await down('lc');
    assert.deepEqual(await leftoversOf(lc.id), []);
    const after_ = await hostSnapshot();
    assert.deepEqual(after_.links, before_.links);
    // Docker's own jumps (DOCKER-ISOLATION comes with an engine's first network) are the engine's, not the clusters'.
    const ours = (rules: string) => rules.split('\n').filter((r) => !/DOCKER/.test(r));
    assert.deepEqual(ours(after_.forward), ours(before_.forward));
    assert.deepEqual(after_.files, before_.files);
    assert.equal(after_.netns, before_.netns);
  });
});

describe('provider docker: the CLI verbs', { skip }, () => {
  let home = '';
  before(async () => {
    home = await useTempHome();
  });
  after(async () => {
    await cleanupHome(home);
  });
  const cli = (...args: string[]) => runCli(args, { home });

  test('list, show, list-nodes, exec, logs and down behave as on the local provider; gc collects a cluster whose folder is gone', { timeout: 180_000 }, async () => {
    const spec = join(home, 'cli.yaml');
    await writeFile(spec, 'name: verbs\nprovider: docker\nnodes: [{name: c, count: 2}]\nstorage: {blob: none}\n');
    const up_ = await cli('up', '-f', spec, '--json');
    assert.equal(up_.code, 0, up_.stderr);
    const state = JSON.parse(up_.stdout) as { id: string; provider: string };
    assert.equal(state.provider, 'docker');
    assert.match(up_.stderr, /✓ node image/);

    const list = JSON.parse((await cli('list', '--json')).stdout) as { name: string; phase: string }[];
    assert.deepEqual(list.map((c) => [c.name, c.phase]), [['verbs', 'running']]);
    const show = await cli('show', 'verbs');
    assert.equal(show.code, 0, show.stderr);
    assert.match(show.stdout, /docker/);
    const nodes = JSON.parse((await cli('list-nodes', 'verbs', '--json')).stdout) as { name: string; running: boolean; slurmState?: string; processes: string[] }[];
    assert.deepEqual(
      nodes.map((n) => [n.name, n.running, n.slurmState ?? '-', n.processes.filter((p) => ['munged', 'slurmctld', 'slurmd'].includes(p)).join(',')]),
      [
        ['head', true, '-', 'munged,slurmctld'],
        ['c1', true, 'idle', 'munged,slurmd'],
        ['c2', true, 'idle', 'munged,slurmd'],
      ],
    );

    // shell at a terminal: an interactive bash in the node, with a terminal of its own, its exit code passed on.
    const shell = await runInTerminal(['shell', 'verbs', '--node', 'c1'], 'echo "in-$(hostname) $(tty)"\nexit 7\n', { home });
    assert.equal(shell.code, 7, shell.screen);
    assert.match(shell.screen, /\[root@verbs:c1 [^\]]*\]# /, 'the prompt names the cluster and node');
    assert.match(shell.screen, /in-c1 \/dev\/pts\/\d+/, shell.screen);

    const exec = await cli('exec', 'verbs', '--node', 'c2', '--', 'bash', '-c', 'hostname; exit 3');
    assert.equal(exec.code, 3);
    assert.equal(exec.stdout, 'c2\n');
    const logs = await cli('logs', 'verbs', '--daemon', 'slurmctld');
    assert.equal(logs.code, 0, logs.stderr);
    assert.match(logs.stdout, /slurmctld version 22\.05/);
    const worker = await cli('logs', 'verbs', '--node', 'c1', '--daemon', 'munged');
    assert.equal(worker.code, 0, worker.stderr);
    assert.match(worker.stdout, /Starting munge/i);

    // A cluster whose folder is gone: gc finds its containers, network and volumes by label.
    await rm(join(home, 'clusters', 'verbs'), { recursive: true, force: true });
    assert.notDeepEqual(await engineLeftovers(engine().docker, state.id), []);
    const gc = await cli('gc', '--json');
    assert.equal(gc.code, 0, gc.stderr);
    assert.deepEqual(await engineLeftovers(engine().docker, state.id), []);
    assert.equal((await cli('down', 'verbs')).code, 0, 'down of a cluster that is gone is a no-op');
  });
});
