/**
 * Autoscaling on the queue through Slurm's power saving, on real Slurm and the local provider:
 * the agent as `up` starts it (a process of its own), and in this process over the
 * fault-injecting provider for a node that fails to start. Needs root.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { parseSpec } from '../spec/load.js';
import { SlurmkitError } from '../util/errors.js';
import { down, start, stop, up } from './lifecycle.js';
import { readState, type ClusterState } from './state.js';
import { labelOf, providerFor } from './nodes.js';
import { addNodes } from './scale.js';
import { parsePass, runAgent } from './autoscale.js';
import { expandHostlist } from '../slurm/hostlist.js';
import { ClusterPaths } from './paths.js';
import { FaultyProvider } from '../providers/faulty.js';
import { LocalProvider } from '../providers/local/provider.js';
import { overrideProvider } from '../providers/registry.js';
import { showCluster, listNodes } from './inspect.js';
import { cleanupHome, hostSnapshot, leftoversOf, sh, shOk, useTempHome, type HostSnapshot } from '../testing/harness.js';
import { sleep, waitFor } from '../util/run.js';
import { runCli } from '../testing/cli.js';
import { useTestEngine } from '../testing/dockerd.js';

// Started before any cluster of this file, so the host snapshot of the local tests includes it.
const { skip } = await useTestEngine({ before, after });

const SPEC = (name: string, min = 0, provider = 'local') => `name: ${name}
provider: ${provider}
nodes:
  - {name: c, autoscale: {minNodes: ${min}, maxNodes: 4, idleTimeoutSeconds: 5, resumeTimeoutSeconds: 40}}
storage: {blob: none}
`;

async function upSpec(name: string, opts: { agent?: boolean; min?: number; provider?: string } = {}): Promise<ClusterState> {
  const text = SPEC(name, opts.min, opts.provider);
  return up({ config: parseSpec(text, 'test'), specText: text, readyTimeoutMs: 60_000, ...(opts.agent === false ? { agent: false } : {}) });
}

/** The workers the provider runs now, sorted. */
async function made(state: ClusterState): Promise<string[]> {
  return (await providerFor(state).list(labelOf(state))).filter((n) => n.running && n.hostname !== 'head').map((n) => n.hostname).sort();
}

/** waitFor with the probe's errors taken as "not yet" (slurmctld restarting, say). */
function until<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 60_000): Promise<T> {
  return waitFor(what, () => fn().catch(() => undefined), { timeoutMs, intervalMs: 200, maxIntervalMs: 200 });
}

test('the head answers a pass with its requests and the power state of the planned nodes', () => {
  const out = [
    '@@request 1764826000123.77.resume',
    'resume c[1-2]',
    '{"all_nodes_resume":"c[1-2]","jobs":[{"job_id":12,"nodes_alloc":"c[1-2]","nodes_resume":"c[1-2]"}]}',
    '',
    '@@request 1764826000456.78.suspend',
    'suspend c3',
    '',
    '@@sinfo',
    'c1|allocated#|none',
    'c2|idle~|none',
    'c3|idle%|none',
    'c4|down~|slurmkit: could not make node: boom',
    '',
  ].join('\n');
  const pass = parsePass(out);
  assert.deepEqual(pass.requests, [
    { action: 'resume', nodes: ['c1', 'c2'], at: 1764826000123, jobs: ['12'] },
    { action: 'suspend', nodes: ['c3'], at: 1764826000456, jobs: [] },
  ]);
  assert.deepEqual(
    pass.nodes.map((n) => [n.name, n.state, n.power ?? 'on']),
    [
      ['c1', 'allocated', 'powering-up'],
      ['c2', 'idle', 'off'],
      ['c3', 'idle', 'powering-down'],
      ['c4', 'down', 'off'],
    ],
  );
  assert.equal(pass.nodes[3]!.reason, 'slurmkit: could not make node: boom');
});

test('autoscale in the spec: maxNodes is the count, bad values named with their fix', () => {
  const ok = parseSpec('name: a\nnodes: [{name: c, autoscale: {minNodes: 1, maxNodes: 3}}]\n', 'spec.yaml');
  assert.deepEqual(ok.nodes.map((n) => [n.name, n.cloud ?? false]), [['c1', false], ['c2', true], ['c3', true]]);
  assert.deepEqual(ok.groups[0]!.autoscale, { minNodes: 1, maxNodes: 3, idleTimeoutSeconds: 300, resumeTimeoutSeconds: 120 });
  const problems = (text: string) => {
    try {
      parseSpec(text, 'spec.yaml');
    } catch (err) {
      return ((err as SlurmkitError).details ?? []).join('\n');
    }
    return '';
  };
  assert.match(problems('name: a\nnodes: [{name: c, count: 2, autoscale: {maxNodes: 3}}]\n'), /nodes\[0\]\.autoscale\.maxNodes: 3 differs from the group's count \(2\).* — write one of them/);
  assert.match(problems('name: a\nnodes: [{name: c, autoscale: {minNodes: 4, maxNodes: 3}}]\n'), /nodes\[0\]\.autoscale\.minNodes: 4 is more than the group's maxNodes \(3\)/);
  assert.match(problems('name: a\nnodes: [{name: c, count: 2, autoscale: {idleTimeoutSeconds: 1}}]\n'), /nodes\[0\]\.autoscale\.idleTimeoutSeconds/);
  assert.match(problems('name: a\nnodes: [{name: c, autoscale: {minNodes: 1}}]\n'), /nodes\[0\]\.count/);
});

describe('autoscaling on provider local (real Slurm, the agent as up starts it)', () => {
  let home = '';
  let snap: HostSnapshot;
  before(async () => {
    snap = await hostSnapshot();
    home = await useTempHome();
  });
  after(async () => {
    await cleanupHome(home);
  });

  test('0 → 4 for a pending 4-node job and back to 0 when idle; too large a job refused at once; ResumeProgram twice makes one node', async () => {
    const st = await upSpec('tauto');
    assert.deepEqual(await made(st), [], 'no worker runs before a job needs one');
    const listed = await listNodes('tauto');
    assert.deepEqual(listed.filter((n) => n.role === 'worker').map((n) => `${n.name}:${n.power}`), ['c1:off', 'c2:off', 'c3:off', 'c4:off']);

    // Larger than maxNodes: Slurm's own refusal at submission, nothing made.
    const tooBig = await sh(st, 'sbatch -o /dev/null -N5 --wrap true');
    assert.notEqual(tooBig.exitCode, 0);
    assert.match(tooBig.stderr, /Batch job submission failed/);

    // Up to maxNodes: accepted, and the nodes are made for it. --wait returns when the job ends.
    const run = await sh(st, 'sbatch --wait -o /dev/null -N4 --wrap "srun -N4 true"');
    assert.equal(run.exitCode, 0, run.stderr);
    const events = (await showCluster('tauto')).scaleEvents;
    const resume = events.find((e) => e.action === 'resume');
    assert.ok(resume, JSON.stringify(events));
    assert.equal(resume.nodes, 'c[1-4]');
    assert.deepEqual(resume.phases.map((p) => p.phase), ['node created', 'slurmd registered', 'job started']);

    // Idle for idleTimeoutSeconds (5): powered down and taken away, every one of them.
    await until('every node taken away', async () => ((await made(st)).length === 0 ? true : undefined), 60_000);
    await until('Slurm calls them powered down', async () => ((await shOk(st, "sinfo -h -N -o '%N %T'")).trim().split('\n').every((l) => l.endsWith('idle~')) ? true : undefined));
    assert.deepEqual((await readState('tauto'))!.nodes.map((n) => n.name), ['head']);
    assert.ok((await showCluster('tauto')).scaleEvents.some((e) => e.action === 'suspend' && !e.error));

    // ResumeProgram called twice for the same node (as after a restart of slurmctld): one node, made once.
    await shOk(st, 'scontrol update NodeName=c2 State=POWER_UP');
    await shOk(st, '/etc/slurm/slurmkit-resume c2');
    await until('c2 idle', async () => ((await shOk(st, 'sinfo -h -N -n c2 -o %T')).trim() === 'idle' ? true : undefined));
    await sleep(1_000);
    assert.deepEqual(await made(st), ['c2']);
    assert.equal((await readState('tauto'))!.nodes.filter((n) => n.name === 'c2').length, 1);

    // slurmctld restarted while it powers nodes up for a job (stopped with SIGTERM, which saves its
    // state, then started again by start): the job runs, and every node is made once.
    // The moment slurmctld calls ResumeProgram is in its power log (a node's powering-up state may last less than a poll).
    const resumes = async () => Number((await shOk(st, 'grep -c " resume " /var/log/slurm/power.log || true')).trim());
    const before3 = await resumes();
    const id3 = (await shOk(st, 'sbatch --parsable -o /dev/null -N3 --wrap "srun -N3 sleep 2"')).trim();
    await until('slurmctld asking for nodes', async () => ((await resumes()) > before3 ? true : undefined), 30_000);
    await shOk(st, 'pkill -TERM -x slurmctld; while pgrep -x slurmctld >/dev/null; do sleep 0.05; done');
    await start('tauto');
    await until(`job ${id3} done`, async () => (/JobState=COMPLETED/.test(await shOk(st, `scontrol show job ${id3}`)) ? true : undefined), 60_000);
    const afterRestart = (await readState('tauto'))!.nodes.filter((n) => n.role === 'worker').map((n) => n.name);
    assert.equal(new Set(afterRestart).size, afterRestart.length, 'no node recorded twice');
    assert.deepEqual([...afterRestart].sort(), await made(st));

    // stop ends the agent, start brings it back, and autoscaling goes on.
    await stop('tauto');
    assert.equal(existsSync(join(ClusterPaths.of('tauto').root, 'agent.pid')), false, 'the agent stopped with the cluster');
    await start('tauto');
    const again = await sh(st, 'sbatch --wait -o /dev/null -N4 --wrap "srun -N4 true"');
    assert.equal(again.exitCode, 0, again.stderr);

    // An agent that died is seen in show, and start brings it back.
    assert.equal((await showCluster('tauto')).agent?.running, true);
    process.kill((await showCluster('tauto')).agent!.pid!, 'SIGKILL');
    await until('the agent gone', async () => ((await showCluster('tauto')).agent?.running === false ? true : undefined), 10_000);
    const shown = await runCli(['show', 'tauto'], { home });
    assert.match(shown.stdout, /autoscale: agent NOT running — nodes are not made or removed; restart it with: slurmkit start tauto/);
    await start('tauto');
    assert.equal((await showCluster('tauto')).agent?.running, true);
    const logs = await runCli(['logs', 'tauto', '--daemon', 'agent'], { home });
    assert.match(logs.stdout, /resume c\[1-4\] for job\(s\)/);

    // Manual scaling would fight autoscaling: refused with the reason.
    await assert.rejects(addNodes('tauto', { group: 'c', count: 1 }), /autoscales/);

    const agentPid = join(ClusterPaths.of('tauto').root, 'agent.pid');
    assert.ok(existsSync(agentPid));
    const pid = Number((await import('node:fs')).readFileSync(agentPid, 'utf8'));
    const id = st.id;
    await down('tauto');
    assert.throws(() => process.kill(pid, 0), 'the agent ended with the cluster');
    assert.deepEqual(await leftoversOf(id), []);
    assert.deepEqual(await hostSnapshot(), snap);
  });
});

describe('a node that fails to start (fault-injecting provider, the agent in this process)', () => {
  let home = '';
  let restore: (() => void) | undefined;
  before(async () => {
    home = await useTempHome();
  });
  after(async () => {
    restore?.();
    await cleanupHome(home);
  });

  test('marked DOWN at once with the provider error, its job requeued, nothing left of it, and the node used again later', async () => {
    const st = await upSpec('tafail', { agent: false });
    const faulty = new FaultyProvider(new LocalProvider(), [{ kind: 'bootFails', node: 'c1' }]);
    restore = overrideProvider('local', faulty).restore;
    const stop = new AbortController();
    const lines: string[] = [];
    const agent = runAgent('tafail', { signal: stop.signal, log: (l) => lines.push(l) });
    try {
      const id = (await shOk(st, 'sbatch --parsable -o /dev/null -N1 --wrap "srun true"')).trim();
      // The failure is seen in the node's reason (DOWN at once, not after ResumeTimeout's 40 s).
      const failed = await until(
        'the failed start recorded',
        async () => (await showCluster('tafail')).scaleEvents.find((e) => e.action === 'resume' && e.error),
        30_000,
      );
      assert.match(failed.error!, /could not make node: .*injected fault: boot of c1 fails/);
      assert.equal(faulty.pending.length, 0, 'the fault fired');
      // Its job is requeued and runs once a node starts (c1 again, back in the pool, or another).
      await until('the job ran', async () => ((await sh(st, `scontrol show job ${id}`)).stdout.match(/JobState=COMPLETED/) ? true : undefined), 60_000);
      assert.match((await shOk(st, `scontrol show job ${id}`)), /Restarts=[1-9]/, 'requeued after the failure');
      // Nothing of the failed start leaked: every node made runs, and is in the state.
      const state = (await readState('tafail'))!;
      const running = await made(st);
      assert.deepEqual(state.nodes.filter((n) => n.role === 'worker').map((n) => n.name).sort(), running);
      assert.ok(lines.some((l) => l.startsWith('could not make c1')), lines.join('\n'));
    } finally {
      stop.abort();
      await agent;
      restore?.();
      restore = undefined;
    }
    const id = st.id;
    await down('tafail');
    assert.deepEqual(await leftoversOf(id), []);
  });
});

test('slurm.conf of an autoscaling group: CLOUD nodes, the power programs, the nodes that always run excluded, powered-down nodes listed', async () => {
  const { renderSlurmConf, renderPowerPrograms } = await import('../slurm/render.js');
  const config = parseSpec(SPEC('a', 1), 'spec.yaml');
  const addresses = Object.fromEntries([['head', '10.1.0.2'], ...config.nodes.map((n, i) => [n.name, `10.1.0.${11 + i}`])]);
  const conf = renderSlurmConf(config, { subnet: '10.1.0.0/24', prefixLength: 24, gateway: '10.1.0.1', addresses });
  assert.match(conf, /^NodeName=c1 NodeAddr=10\.1\.0\.11 .*State=UNKNOWN$/m);
  assert.match(conf, /^NodeName=c4 NodeAddr=10\.1\.0\.14 .*State=CLOUD$/m);
  assert.match(conf, /^SuspendExcNodes=c1$/m);
  assert.match(conf, /^SuspendTime=5$/m);
  assert.match(conf, /^ResumeTimeout=40$/m);
  assert.match(conf, /^ResumeProgram=\/etc\/slurm\/slurmkit-resume$/m);
  assert.match(conf, /^PrologSlurmctld=\/etc\/slurm\/slurmkit-prolog$/m);
  assert.match(conf, /^PrivateData=cloud,/m);
  assert.equal(conf.match(/^SlurmctldParameters=/gm)?.length, 1, 'one SlurmctldParameters line');
  assert.deepEqual(Object.keys(renderPowerPrograms(config)).sort(), ['slurmkit-prolog', 'slurmkit-resume', 'slurmkit-resume-fail', 'slurmkit-suspend']);
  assert.deepEqual(renderPowerPrograms(parseSpec('name: b\nnodes: [{name: c, count: 2}]\n', 'spec.yaml')), {});
});

describe('autoscaling on provider docker', { skip }, () => {
  let home = '';
  before(async () => {
    home = await useTempHome();
  });
  after(async () => {
    await cleanupHome(home);
  });

  test('a 4-node job makes the 3 containers it lacks, configless, and they go again when idle', async () => {
    const st = await upSpec('tdauto', { min: 1, provider: 'docker' });
    assert.deepEqual(await made(st), ['c1']);
    const run = await sh(st, 'sbatch --wait -o /dev/null -N4 --wrap "srun -N4 true"');
    assert.equal(run.exitCode, 0, run.stderr);
    const resume = (await showCluster('tdauto')).scaleEvents.find((e) => e.action === 'resume');
    assert.equal(resume?.nodes, 'c[2-4]', JSON.stringify(resume));
    assert.deepEqual(resume.phases.map((p) => p.phase), ['node created', 'slurmd registered', 'job started']);
    await until('back to the node that always runs', async () => ((await made(st)).join() === 'c1' ? true : undefined), 60_000);
    const removed = async () => (await showCluster('tdauto')).scaleEvents.filter((e) => e.action === 'suspend').flatMap((e) => expandHostlist(e.nodes)).sort();
    await until('the removals recorded', async () => ((await removed()).length >= 3 ? true : undefined), 10_000);
    await sleep(2_000);
    // Each node removed once (Slurm may power them down in one pass or several).
    assert.deepEqual(await removed(), ['c2', 'c3', 'c4']);
    const id = st.id;
    await down('tdauto');
    assert.deepEqual(await leftoversOf(id), []);
  });
});
