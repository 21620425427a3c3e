/**
 * Live scaling on real Slurm: nodes added to and taken from a running cluster on the local
 * provider (and, when dockerd is installed, on docker), with jobs running; failures driven by
 * the fault-injecting provider over the real local one. Needs root.
 */
import { after, afterEach, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { parseSpec } from '../spec/load.js';
import { addNodes, removeNodes, resize, terminateNodes, pickVictims } from './scale.js';
import { down, start, stop, up } from './lifecycle.js';
import { readState, type ClusterState } from './state.js';
import { labelOf, providerFor } from './nodes.js';
import { FaultyProvider } from '../providers/faulty.js';
import { LocalProvider } from '../providers/local/provider.js';
import { overrideProvider } from '../providers/registry.js';
import { Progress } from '../util/progress.js';
import { cleanupHome, hostSnapshot, leftoversOf, sh, shOk, useTempHome, type HostSnapshot } from '../testing/harness.js';
import { runCli } from '../testing/cli.js';
import { useTestEngine } from '../testing/dockerd.js';
import { LABEL } from '../providers/docker/engine.js';
import { sleep } from '../util/run.js';

// Started before any cluster of this file, so the host snapshot of the local tests includes it.
const { skip, engine } = await useTestEngine({ before, after });

const SPEC = (name: string, provider = 'local') => `name: ${name}
provider: ${provider}
nodes: [{name: c, count: 2}, {name: big, count: 1, cpus: 2}]
partitions:
  - {name: all, nodes: all, default: true}
  - {name: cpu, nodes: {group: c}}
  - {name: pinned, nodes: [c1]}
storage: {blob: none}
`;

async function upSpec(name: string, provider = 'local'): Promise<ClusterState> {
  const text = SPEC(name, provider);
  return up({ config: parseSpec(text, 'test'), specText: text, readyTimeoutMs: 60_000 });
}

/** Submits a batch job and waits until it runs; returns its id. */
async function running(state: ClusterState, args: string): Promise<string> {
  // No output file: on the local provider a job's folder (/) is this machine's.
  const id = (await shOk(state, `sbatch --parsable -o /dev/null ${args}`)).trim();
  for (let i = 0; i < 200; i++) {
    if ((await shOk(state, `squeue -h -j ${id} -o %T`)).trim() === 'RUNNING') return id;
    await sleep(100);
  }
  throw new Error(`job ${id} did not start`);
}

const jobState = async (state: ClusterState, id: string) => (await shOk(state, `scontrol show job ${id} | grep -o 'JobState=[A-Z]*'`)).trim();
const sinfoNodes = async (state: ClusterState, partition?: string) =>
  [...new Set((await shOk(state, `sinfo -h -N ${partition ? `-p ${partition}` : ''} -o %N`)).trim().split('\n').filter(Boolean))].sort();
const workers = async (name: string) => ((await readState(name))!.nodes.filter((n) => n.role === 'worker').map((n) => n.name)).sort();

test('victims: idle nodes first, then the fewest running jobs, the newest among equals', () => {
  const c = (name: string, index: number, idle: boolean, jobs: number) => ({ name, index, idle, jobs });
  assert.deepEqual(pickVictims([c('c1', 1, false, 2), c('c2', 2, true, 0), c('c3', 3, false, 1), c('c4', 4, true, 0)], 3), ['c4', 'c2', 'c3']);
  assert.deepEqual(pickVictims([c('c1', 1, false, 1), c('c2', 2, false, 3)], 1), ['c1']);
});

describe('live scaling on the local provider', () => {
  let home = '';
  let snap: HostSnapshot;
  let st: ClusterState;
  before(async () => {
    home = await useTempHome();
    snap = await hostSnapshot();
    st = await upSpec('tscale');
  });
  after(async () => {
    await cleanupHome(home);
  });

  test('a job no partition could run is refused at submission with Slurm\'s message', async () => {
    const r = await sh(st, 'sbatch -N 99 --wrap true');
    assert.notEqual(r.exitCode, 0);
    assert.match(r.stderr, /Batch job submission failed/);
    assert.equal((await shOk(st, 'squeue -h -o %i')).trim(), '', 'nothing was queued');
  });

  test('bad arguments name the flag and change nothing', async () => {
    const before_ = await readState('tscale');
    const many = await runCli(['add-node', 'tscale'], { home });
    assert.equal(many.code, 2, many.stderr);
    assert.match(many.stderr, /2 node groups \(c, big\); say which with --group/);
    const count = await runCli(['add-node', 'tscale', '--group', 'c', '--count', '0'], { home });
    assert.equal(count.code, 2, count.stderr);
    assert.match(count.stderr, /--count must be a whole number, 1 or more, got "0"/);
    const group = await runCli(['add-node', 'tscale', '--group', 'gpu'], { home });
    assert.equal(group.code, 2, group.stderr);
    assert.match(group.stderr, /--group gpu: cluster tscale has no such node group/);
    assert.match(group.stderr, /its groups: c, big/);
    const unknown = await runCli(['terminate-node', 'tscale', 'c9'], { home });
    assert.equal(unknown.code, 3, unknown.stderr);
    assert.match(unknown.stderr, /cluster tscale has no worker c9/);
    const head = await runCli(['terminate-node', 'tscale', 'head'], { home });
    assert.match(head.stderr, /head is the head, which stays with the cluster/);
    const pinned = await runCli(['terminate-node', 'tscale', 'c1'], { home });
    assert.equal(pinned.code, 4, pinned.stderr);
    assert.match(pinned.stderr, /partition pinned would have no node/);
    assert.deepEqual((await readState('tscale'))!.nodes, before_!.nodes);
    assert.deepEqual(await sinfoNodes(st), ['big1', 'c1', 'c2']);
  });

  test('add-node while a job runs: the new nodes take jobs, every node knows their names, the job is untouched', async () => {
    const job = await running(st, '-w c1 --wrap "sleep 30"');
    const startTime = (await shOk(st, `squeue -h -j ${job} -o %S`)).trim();
    const r = await runCli(['add-node', 'tscale', '--group', 'c', '--count', '2', '--json'], { home });
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout).added, ['c3', 'c4']);
    assert.deepEqual(await sinfoNodes(st, 'cpu'), ['c1', 'c2', 'c3', 'c4'], 'the partition of the whole group takes them');
    assert.deepEqual(await sinfoNodes(st, 'pinned'), ['c1'], 'a partition that names its nodes keeps them');
    assert.equal((await shOk(st, 'srun -p cpu -w c[3-4] -N2 hostname')).trim().split('\n').sort().join(' '), 'c3 c4');
    const c4 = (await readState('tscale'))!.nodes.find((n) => n.name === 'c4')!.address;
    assert.equal((await shOk(st, 'getent hosts c4', 'c1')).split(/\s+/)[0], c4);
    assert.match(await shOk(st, 'getent hosts c3', 'big1'), /\sc3$/m);
    assert.equal((await shOk(st, `squeue -h -j ${job} -o '%T|%S'`)).trim(), `RUNNING|${startTime}`);
    await shOk(st, `scancel ${job}`);
  });

  test('terminate-node on a busy node waits for its job, then the node is gone from Slurm, the state and the machine', async () => {
    const job = await running(st, '-w c4 --wrap "sleep 3"');
    const t0 = Date.now();
    const r = await runCli(['terminate-node', 'tscale', 'c4', '--json'], { home });
    assert.equal(r.code, 0, r.stderr);
    assert.ok(Date.now() - t0 >= 2000, 'it waited for the job');
    assert.match(r.stderr, /waiting for job\(s\) \d+/);
    assert.equal(await jobState(st, job), 'JobState=COMPLETED');
    assert.deepEqual(await sinfoNodes(st), ['big1', 'c1', 'c2', 'c3']);
    assert.deepEqual(await workers('tscale'), ['big1', 'c1', 'c2', 'c3']);
    const live = await providerFor(st).list(labelOf(st));
    assert.equal(live.some((n) => n.hostname === 'c4'), false);
  });

  test('--force requeues the job of a busy node and takes it away at once', async () => {
    const job = await running(st, '-w c3 --wrap "sleep 60"');
    const r = await runCli(['terminate-node', 'tscale', 'c3', '--force', '--json'], { home });
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout).requeued, [job]);
    assert.match(await shOk(st, `scontrol show job ${job}`), /Restarts=1/);
    assert.deepEqual(await sinfoNodes(st), ['big1', 'c1', 'c2']);
    await shOk(st, `scancel ${job}`);
  });

  test('interrupted while waiting, terminate undoes its own drain but never an administrator\'s', async () => {
    await addNodes('tscale', { group: 'c', count: 1 });
    await shOk(st, "scontrol update NodeName=c2 State=DRAIN Reason='disk check'");
    const job = await running(st, '-w c3 --wrap "sleep 30"');
    const stopIt = new AbortController();
    const waiting = terminateNodes('tscale', ['c3'], { progress: new Progress(() => undefined, stopIt.signal) });
    await sleep(1500);
    assert.match(await shOk(st, 'sinfo -h -n c3 -o "%T|%E"'), /^draining\|slurmkit: terminate-node/);
    stopIt.abort();
    await assert.rejects(waiting, /interrupted/);
    assert.match(await shOk(st, 'sinfo -h -n c3 -o %T'), /^alloc/, 'its own drain undone');
    assert.equal((await shOk(st, 'sinfo -h -n c2 -o "%T|%E"')).trim(), 'drained|disk check', "the administrator's drain stays");
    await shOk(st, `scancel ${job}`);
    await shOk(st, 'scontrol update NodeName=c2 State=RESUME');
  });

  test('resize takes idle nodes first, then the least busy, and leaves running jobs alone', async () => {
    const grown = await resize('tscale', { group: 'c', count: 5 });
    assert.deepEqual(grown.nodes, ['c4', 'c5']);
    const a = await running(st, '-w c1 --wrap "sleep 60"');
    const b = await running(st, '-w c3 --wrap "sleep 60"');
    const r = await runCli(['resize', 'tscale', '--group', 'c', '--count', '2', '--json'], { home });
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    assert.equal(out.change, -3);
    assert.deepEqual([...out.nodes].sort(), ['c2', 'c4', 'c5'], 'the three idle ones');
    assert.deepEqual(await sinfoNodes(st, 'cpu'), ['c1', 'c3']);
    assert.equal(await jobState(st, a), 'JobState=RUNNING');
    assert.equal(await jobState(st, b), 'JobState=RUNNING');
    await shOk(st, `scancel ${a} ${b}`);
  });

  test('remove-node refuses a node that runs, and forgets one whose machine is gone', async () => {
    const r = await runCli(['remove-node', 'tscale', 'c3'], { home });
    assert.equal(r.code, 4, r.stderr);
    assert.match(r.stderr, /c3 still runs; remove-node forgets nodes whose machine is gone/);
    assert.match(r.stderr, /slurmkit terminate-node tscale c3/);
    await providerFor(st).destroyNodes(labelOf(st), ['c3']);
    const gone = await runCli(['remove-node', 'tscale', 'c3'], { home });
    assert.equal(gone.code, 0, gone.stderr);
    assert.deepEqual(await sinfoNodes(st), ['big1', 'c1']);
    assert.deepEqual(await workers('tscale'), ['big1', 'c1']);
  });

  test('added nodes come back after stop and start, and take jobs', async () => {
    await addNodes('tscale', { group: 'c', count: 2 });
    await stop('tscale');
    st = await start('tscale');
    assert.deepEqual(await sinfoNodes(st), ['big1', 'c1', 'c2', 'c3']);
    assert.equal((await shOk(st, 'srun -p cpu -N3 hostname')).trim().split('\n').sort().join(' '), 'c1 c2 c3');
  });

  test('down leaves nothing of the cluster on this machine', async () => {
    const id = st.id;
    await down('tscale');
    assert.deepEqual(await leftoversOf(id), []);
    const now = await hostSnapshot();
    assert.deepEqual(now, snap);
  });
});

describe('adding a node that fails to boot (fault-injecting provider)', () => {
  let home = '';
  let restore: (() => void) | undefined;
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

  test('the new node is taken away again: not in Slurm, not in the state, nothing of it runs', async () => {
    const st = await upSpec('tfail');
    restore = overrideProvider('local', new FaultyProvider(new LocalProvider(), [{ kind: 'bootFails', node: 'c3' }])).restore;
    await assert.rejects(addNodes('tfail', { group: 'c', count: 1 }), /c3/);
    restore();
    restore = undefined;
    assert.deepEqual(await workers('tfail'), ['big1', 'c1', 'c2']);
    assert.deepEqual(await sinfoNodes(st), ['big1', 'c1', 'c2']);
    assert.equal((await sh(st, 'scontrol --future show node c3')).exitCode, 1, 'slurmctld forgot it');
    assert.equal((await providerFor(st).list(labelOf(st))).some((n) => n.hostname === 'c3'), false);
    assert.doesNotMatch(await shOk(st, 'cat /etc/hosts', 'c1'), /\bc3\b/);
    // The name is free again: the next add gets it and works.
    await addNodes('tfail', { group: 'c', count: 1 });
    assert.deepEqual(await sinfoNodes(st), ['big1', 'c1', 'c2', 'c3']);
    await down('tfail');
  });
});

describe('live scaling on provider docker', { skip }, () => {
  let home = '';
  before(async () => {
    home = await useTempHome();
  });
  after(async () => {
    await cleanupHome(home);
  });

  test('add-node joins configless nodes, names reach every container, terminate and stop/start keep it right', async () => {
    let st = await upSpec('tdscale', 'docker');
    const job = await running(st, '-w c1 --wrap "sleep 30"');
    const added = await addNodes('tdscale', { group: 'c', count: 2 });
    assert.deepEqual(added.nodes, ['c3', 'c4']);
    assert.equal((await shOk(st, 'srun -p cpu -w c[3-4] -N2 hostname')).trim().split('\n').sort().join(' '), 'c3 c4');
    assert.match(await shOk(st, 'getent hosts c4', 'c2'), /\sc4$/m);
    assert.equal(await jobState(st, job), 'JobState=RUNNING');
    await terminateNodes('tdscale', ['c2']);
    await shOk(st, `scancel ${job}`);
    await stop('tdscale');
    st = await start('tdscale');
    assert.deepEqual(await sinfoNodes(st), ['big1', 'c1', 'c3', 'c4']);
    assert.equal((await shOk(st, 'srun -p cpu -N3 hostname')).trim().split('\n').sort().join(' '), 'c1 c3 c4');
    const id = st.id;
    await down('tdscale');
    const left = await engine().docker.listContainers({ all: true, filters: { label: [`${LABEL.id}=${id}`] } });
    assert.deepEqual(left, []);
  });
});
