/**
 * The fault suite (`npm run test:faults`): faults a real machine sees, on real clusters of the
 * local provider, each followed by what a user would do (`start`, `up`, `down`, `gc`), and
 * after every scenario the five invariants of invariants.ts. Prints a summary; exits 1 if any
 * check failed. Needs root and the packages of scripts/setup.sh.
 */
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { resolveSpec } from '../spec/load.js';
import { down, gc, start, stop, up } from '../app/clusters.js';
import { ClusterPaths } from '../cluster/paths.js';
import { listClusters } from '../cluster/inspect.js';
import type { ClusterState } from '../cluster/state.js';
import { scanLabeledProcesses } from '../providers/local/procscan.js';
import { cleanupHome, sh, shOk } from '../testing/harness.js';
import { runCli, type CliOptions } from '../testing/cli.js';
import { run, sleep } from '../util/run.js';
import {
  ADMIN_REASON,
  adminDrainKept,
  baseline,
  logOffsets,
  nodesConverge,
  noJobLost,
  noUnexplainedErrors,
  nothingLeaked,
  TRACKED_JOB,
  type Tracked,
  type Baseline,
  type Check,
} from './invariants.js';


interface Outcome {
  scenario: string;
  checks: (Check | { invariant: 'scenario'; ok: boolean; detail: string })[];
  ms: number;
}
const outcomes: Outcome[] = [];
let base: Baseline;

function say(line: string): void {
  process.stdout.write(`${line}\n`);
}

/** The CLI as a user runs it, with this suite's SLURMKIT_HOME. */
const cli = (args: string[], opts: CliOptions = {}) => runCli(args, { timeoutMs: 180_000, ...opts });

function expect(ok: boolean, detail: string) {
  return { invariant: 'scenario' as const, ok, detail };
}

async function scenario(name: string, fn: () => Promise<Outcome['checks']>): Promise<void> {
  // SLURMKIT_FAULTS_ONLY=text runs only the scenarios whose name contains it.
  if (process.env.SLURMKIT_FAULTS_ONLY && !name.includes(process.env.SLURMKIT_FAULTS_ONLY)) return;
  const t0 = Date.now();
  process.stdout.write(`• ${name} ... `);
  let checks: Outcome['checks'];
  try {
    checks = await fn();
  } catch (err) {
    checks = [expect(false, `threw: ${(err as Error).stack ?? String(err)}`)];
  }
  const ms = Date.now() - t0;
  outcomes.push({ scenario: name, checks, ms });
  const failed = checks.filter((c) => !c.ok);
  say(failed.length ? `FAILED (${(ms / 1000).toFixed(1)} s)` : `ok (${(ms / 1000).toFixed(1)} s)`);
  for (const c of checks) say(`    ${c.ok ? '✓' : '✗'} ${c.invariant}: ${c.detail}`);
}

// ------------------------------------------------------------------------------------------
// Daemon and node faults, on one cluster with an administrator's drain on c3
// ------------------------------------------------------------------------------------------

const FA = 'faults';
let fa: ClusterState;

async function pidOf(comm: string, node: string, init = false): Promise<number> {
  const p = (await scanLabeledProcesses()).find((x) => x.clusterId === fa.id && x.node === node && (init ? x.isNodeInit : x.comm === comm));
  if (!p) throw new Error(`no ${init ? 'init' : comm} on ${node}`);
  return p.pid;
}

let submitted = 0;
async function submit(args: string, seconds: number): Promise<Tracked> {
  const tag = `tracked-${++submitted}`;
  const id = (await shOk(fa, `sbatch --parsable -o /dev/null -J ${tag} ${args} --wrap '${TRACKED_JOB(seconds)}'`)).trim();
  return { id, tag };
}

async function waitRunning(job: Tracked, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if ((await sh(fa, `test -e /shared/faults/${job.tag}.start`)).exitCode === 0) return;
    await sleep(100);
  }
  throw new Error(`job ${job.id} did not start within ${timeoutMs} ms`);
}

/** A daemon or node fault, then `start`, then all five invariants. */
async function daemonScenario(name: string, explained: RegExp[], fn: () => Promise<Tracked[]>, outcome: { keepRunning?: boolean; rerunAfterCrash?: boolean } = {}): Promise<void> {
  await scenario(name, async () => {
    const offsets = await logOffsets(FA);
    const jobs = await fn();
    const checks: Outcome['checks'] = [];
    checks.push(await noJobLost(fa, jobs, { keptRunning: outcome.keepRunning ?? false, rerunAfterCrash: outcome.rerunAfterCrash ?? false }));
    checks.push(await nodesConverge(fa, ['c3']));
    checks.push(await adminDrainKept(fa, 'c3'));
    checks.push(await noUnexplainedErrors(FA, offsets, explained));
    checks.push(await nothingLeaked(base));
    return checks;
  });
}

const NOT_RESPONDING = [/not responding/i, /Nodes? c\d.* now responding/i];

async function daemonFaults(): Promise<void> {
  // Four job slots per node, so that the burst does not take all day on two workers.
  // A requeued job waits cred_expire seconds (120 by default) before it may start again; 10 here.
  const raw = {
    name: FA,
    nodes: [{ name: 'c', count: 3, cpus: 4 }],
    storage: { blob: 'none' },
    slurm: { slurmdTimeoutSeconds: 5, extraConf: { AuthInfo: 'cred_expire=10' } },
  };
  fa = await up({ config: resolveSpec(raw, 'faults'), specText: JSON.stringify(raw) });
  await shOk(fa, `scontrol update nodename=c3 state=drain reason='${ADMIN_REASON}'`);

  await daemonScenario(
    'slurmd killed mid-job on c1, then start: the job keeps running',
    NOT_RESPONDING,
    async () => {
      const job = await submit('-w c1', 4);
      await waitRunning(job);
      process.kill(await pidOf('slurmd', 'c1'), 'SIGKILL');
      await start(FA);
      return [job];
    },
    { keepRunning: true },
  );

  await daemonScenario('munged killed, then start', [/munge/i, /authentication/i, ...NOT_RESPONDING], async () => {
    process.kill(await pidOf('munged', 'head'), 'SIGKILL');
    await sleep(300);
    await start(FA);
    return [await submit('-N2', 1)];
  });

  await daemonScenario("c2's init killed mid-job, then start", [/c2/, /JobId=\d+/, ...NOT_RESPONDING], async () => {
    const job = await submit('-w c2', 4);
    await waitRunning(job);
    process.kill(await pidOf('', 'c2', true), 'SIGKILL');
    await start(FA);
    return [job];
  });

  await daemonScenario("the head's init killed mid-job (slurmctld and munged with it), then start", [/c\d/, /JobId=\d+/, /Registered PENDING JobId=\d+/, /Zero Bytes were transmitted or received|Unexpected missing socket error|Connection reset by peer|Broken pipe|Connection refused/, ...NOT_RESPONDING], async () => {
    const job = await submit('-N2', 10);
    await waitRunning(job);
    await sleep(6000); // past slurmctld's 5 s state save interval, so the job's start is on disk
    process.kill(await pidOf('', 'head', true), 'SIGKILL');
    await sleep(200);
    await start(FA);
    return [job];
  }, { rerunAfterCrash: true });

  const killCtld = async () => {
    process.kill(await pidOf('slurmctld', 'head'), 'SIGKILL');
    await sleep(200);
    await start(FA);
  };
  // A job that slurmd reports but the recovered slurmctld thinks pending: its steps are killed and it runs again.
  const LOST_START = [/Registered PENDING JobId=\d+/];
  // slurmd was talking to slurmctld when it was killed: the connection broke under it.
  const CUT_OFF = [/Zero Bytes were transmitted or received|Unexpected missing socket error|Connection reset by peer|Broken pipe|Connection refused/];
  await daemonScenario('slurmctld killed while idle, then start', CUT_OFF, async () => {
    await killCtld();
    return [await submit('-N2', 1)];
  }, { rerunAfterCrash: true });
  await daemonScenario('slurmctld killed 2 s after a 2-node job started, then start', [...LOST_START, ...CUT_OFF], async () => {
    // Submitted after 6 quiet seconds, so slurmctld saves the submission at once (it saves at
    // most every 5 s) and the crash loses the job's start, never the submission (a submission
    // in the last seconds is lost: see README).
    await sleep(6000);
    const job = await submit('-N2', 8);
    await waitRunning(job);
    await sleep(2000);
    await killCtld();
    return [job];
  }, { rerunAfterCrash: true });
  // slurmctld saves its state at most every 5 s (SAVE_MAX_WAIT in Slurm's state_save.c): a job
  // that starts and ends inside that window is unknown to the recovered controller and runs
  // again. Here the job's start is saved (it ran 7 s) and the crash hits its end.
  await daemonScenario(
    'slurmctld killed as a job finishes, then start',
    [...LOST_START, ...CUT_OFF],
    async () => {
      const job = await submit('-N2', 8);
      await waitRunning(job);
      await sleep(7900);
      await killCtld();
      return [job];
    },
    { rerunAfterCrash: true },
  );

  await daemonScenario('stop while jobs run, then start', [/JobId=\d+/, /c[12]/, ...NOT_RESPONDING], async () => {
    const jobs = [await submit('-w c1', 6), await submit('-w c2', 6)];
    await Promise.all(jobs.map((j) => waitRunning(j)));
    await stop(FA);
    await start(FA);
    return jobs;
  });

  await scenario('5,000 jobs submitted in a burst: all run once, memory stays bounded', async () => {
    const offsets = await logOffsets(FA);
    const dir = '/shared/faults/burst';
    await shOk(fa, `mkdir -p ${dir}`);
    const job = (await shOk(fa, `sbatch --parsable -o /dev/null --array=0-4999 --wrap 'echo x >> ${dir}/$SLURM_ARRAY_TASK_ID'`)).trim();
    let ctldMaxKiB = 0;
    let selfMaxMiB = 0;
    const deadline = Date.now() + 15 * 60_000;
    while (Date.now() < deadline) {
      const rss = Number(/VmRSS:\s+(\d+)/.exec(await readFile(`/proc/${await pidOf('slurmctld', 'head')}/status`, 'utf8'))?.[1] ?? 0);
      ctldMaxKiB = Math.max(ctldMaxKiB, rss);
      selfMaxMiB = Math.max(selfMaxMiB, process.memoryUsage().rss / 2 ** 20);
      if ((await sh(fa, `squeue -h -r -j ${job} -o %i | head -1`)).stdout.trim() === '') break;
      await sleep(2000);
    }
    const ran = (await shOk(fa, `ls ${dir} | wc -l; cat ${dir}/* | wc -l`)).trim().split('\n').map(Number);
    // A task that did not run must be one Slurm reports as failed (never silently dropped); the
    // daemons' errors about that task are then explained by it.
    const present = new Set((await shOk(fa, `ls ${dir}`)).split('\n').filter(Boolean).map(Number));
    const missing = Array.from({ length: 5000 }, (_, i) => i).filter((i) => !present.has(i));
    const reported: string[] = [];
    const explained: RegExp[] = [];
    // slurmctld forgets a finished job MinJobAge (300 s) after its end, which a burst outlasts; its
    // log keeps how each task ended ("_job_complete: JobId=7_42(49) WEXITSTATUS 2").
    const ctldLog = (await readFile(join(ClusterPaths.of(FA).logs, 'slurmctld.log'), 'utf8').catch(() => '')).slice(offsets.get('slurmctld.log') ?? 0);
    for (const t of missing.slice(0, 20)) {
      const info = (await sh(fa, `scontrol show job ${job}_${t} -o 2>/dev/null`)).stdout;
      let id = /JobId=(\d+)/.exec(info)?.[1];
      let how = /JobState=(FAILED|NODE_FAIL|CANCELLED|BOOT_FAIL)\b/.exec(info)?.[1];
      if (!id) {
        const ended = new RegExp(`_job_complete: JobId=${job}_${t}\\((\\d+)\\) (WEXITSTATUS [1-9]\\d*|WTERMSIG \\d+)`).exec(ctldLog);
        [id, how] = [ended?.[1], ended ? `ended with ${ended[2]} (slurmctld.log)` : undefined];
      }
      if (id && how) {
        reported.push(`task ${t} (job ${id}) ${how}`);
        explained.push(new RegExp(`job0*${id}\\b|\\[${id}\\.batch\\]|JobId=${id}\\b`));
      }
    }
    const runsOk = ran[1] === ran[0] && ran[0]! + reported.length === 5000;
    return [
      expect(runsOk, `${ran[0]} of 5000 tasks ran, ${ran[1]} runs in all${reported.length ? `; reported by Slurm: ${reported.join(', ')}` : ''}`),
      expect(ctldMaxKiB < 256 * 1024, `slurmctld peaked at ${(ctldMaxKiB / 1024).toFixed(0)} MiB (bound 256)`),
      expect(selfMaxMiB < 256, `slurmkit peaked at ${selfMaxMiB.toFixed(0)} MiB (bound 256)`),
      await nodesConverge(fa, ['c3']),
      await adminDrainKept(fa, 'c3'),
      await noUnexplainedErrors(FA, offsets, explained),
    ];
  });

  await down(FA);
  await scenario('down of the fault cluster leaves nothing', async () => [await nothingLeaked(base)]);
}

// ------------------------------------------------------------------------------------------
// The CLI and the state store under faults
// ------------------------------------------------------------------------------------------

const UP_PHASES = ['allocate network', 'write config and keys', 'network', 'start head', 'start 2 worker', 'wait for nodes idle', 'launch blob storage'];

async function cliFaults(): Promise<void> {
  for (const [i, phase] of UP_PHASES.entries()) {
    await scenario(`CLI killed with SIGKILL during "${phase}" of up, then up, down and gc`, async () => {
      const name = `killed${i}`;
      // Killed as soon as the phase before it has finished, so it dies inside this one.
      const before = i === 0 ? 'Creating cluster' : `✓ ${UP_PHASES[i - 1]}`;
      let killedAt = '';
      const first = await cli(['up', '-t', 'minimal', '--name', name], {
        onStderr: (text, kill) => {
          if (!killedAt && text.includes(before)) {
            killedAt = before;
            kill();
          }
        },
      });
      const again = await cli(['up', '-t', 'minimal', '--name', name]);
      const gone = await cli(['down', name]);
      const collected = await cli(['gc', '--json']);
      const found = collected.code === 0 ? (JSON.parse(collected.stdout) as { found: string[] }).found : ['gc failed'];
      return [
        expect(first.code === null || first.code !== 0, killedAt ? `killed after "${killedAt}"` : `up ended (${first.code}) before the phase`),
        expect(again.code === 0, `up again: exit ${again.code}${again.code ? `: ${again.stderr.trim().split('\n').slice(-3).join(' | ')}` : ''}`),
        expect(gone.code === 0, `down: exit ${gone.code}`),
        expect(found.length === 0, `gc found ${JSON.stringify(found)}`),
        await nothingLeaked(base),
      ];
    });
  }

  await scenario('two up of the same name at once: one makes it, the other is refused and changes nothing', async () => {
    const [a, b] = await Promise.all([cli(['up', '-t', 'minimal', '--name', 'twice']), cli(['up', '-t', 'minimal', '--name', 'twice'])]);
    const codes = [a.code, b.code].sort();
    const loser = a.code === 0 ? b : a;
    const works = (await cli(['exec', 'twice', '--', 'srun', '-N2', 'hostname'])).stdout.trim().split('\n').sort().join(' ');
    const gone = await cli(['down', 'twice']);
    return [
      expect(codes[0] === 0 && codes[1] === 4, `exit codes ${codes.join(', ')}`),
      expect(/already exists|locked/.test(loser.stderr), `the refusal says: ${loser.stderr.trim().split('\n').find((l) => l.startsWith('error:'))}`),
      expect(works === 'c1 c2', `the cluster made works: ${works}`),
      expect(gone.code === 0, `down: exit ${gone.code}`),
      await nothingLeaked(base),
    ];
  });

  await scenario('down while a batch runs: the batch stops with an error, nothing is left', async () => {
    const name = 'downbatch';
    const made = await cli(['up', '-t', 'minimal', '--name', name]);
    const files = join(process.env.SLURMKIT_HOME!, '..', `faults-batch-${process.pid}`);
    await mkdir(files, { recursive: true });
    for (let i = 0; i < 8; i++) await writeFile(join(files, `f${i}.txt`), `file ${i}\n`);
    const setup = [await cli(['blob', name, 'mk', 'in-files']), await cli(['blob', name, 'mk', 'out-files']), await cli(['blob', name, 'put', 'in-files', files])];
    const t0 = Date.now();
    let running = false;
    const batch = cli(['batch', name, '--input', 'in-files', '--output', 'out-files', '--', 'bash', '-c', 'sleep 20; cp "$1" "$2"', 'slow'], {
      timeoutMs: 90_000,
      onStderr: (text) => void (running ||= /\d+\/8/.test(text)),
    });
    const deadline = Date.now() + 30_000;
    while (!running && Date.now() < deadline) await sleep(100);
    await sleep(1000);
    const gone = await cli(['down', name]);
    const b = await batch;
    await rm(files, { recursive: true, force: true });
    return [
      expect(made.code === 0 && setup.every((r) => r.code === 0), `up and blob set-up: exit ${made.code}, ${setup.map((r) => r.code).join(' ')}`),
      expect(running, 'the batch was running when down came'),
      expect(gone.code === 0, `down during the batch: exit ${gone.code} ${gone.stderr.trim().split('\n').at(-1)}`),
      expect(b.code !== 0 && b.code !== null && Date.now() - t0 < 60_000, `batch ended with exit ${b.code} after ${((Date.now() - t0) / 1000).toFixed(1)} s: ${b.stderr.trim().split('\n').filter((l) => /error|hint/.test(l)).join(' | ')}`),
      await nothingLeaked(base),
    ];
  });

  for (const [what, damage] of [
    ['state.json corrupted', async (file: string) => writeFile(file, '{"version": 1, "name": "dam')],
    ['state.json made unreadable (a folder in its place)', async (file: string) => {
      await rm(file);
      await mkdir(file);
    }],
  ] as const) {
    await scenario(`${what}: list says so, gc spares the cluster, down --force removes it`, async () => {
      const name = 'damaged';
      const c = await up({ config: resolveSpec({ name, nodes: [{ name: 'c', count: 2 }], storage: { blob: 'none' } }, 'faults'), specText: '' });
      await damage(ClusterPaths.of(name).state);
      const row = (await listClusters()).find((v) => v.name === name);
      const report = await gc();
      const alive = (await sh(c, 'sinfo -h -o %D')).stdout.trim();
      const refused = await cli(['down', name]);
      const forced = await cli(['down', name, '--force']);
      return [
        expect(row?.phase === 'broken' && /--force/.test(row.fix ?? ''), `list: ${row?.phase}: ${row?.error}`),
        expect(!report.found.some((f) => f.includes(c.id)) && alive === '2', `gc found ${JSON.stringify(report.found)}; the cluster still answers with ${alive} nodes`),
        expect(refused.code === 4, `down without --force: exit ${refused.code}`),
        expect(forced.code === 0 && !existsSync(ClusterPaths.of(name).root), `down --force: exit ${forced.code}`),
        await nothingLeaked(base),
      ];
    });
  }

  await scenario('SLURMKIT_HOME on a full tmpfs during up: a clear error, nothing made', async () => {
    const dir = await mkdtemp('/var/tmp/slurmkit-full-');
    await run('mount', ['-t', 'tmpfs', '-o', 'size=2m,mode=0700', 'tmpfs', dir]);
    try {
      // Fill it up, as a full disk would be.
      await run('bash', ['-c', `dd if=/dev/zero of=${dir}/filler bs=4k 2>/dev/null; true`]);
      const env = { SLURMKIT_HOME: dir };
      const r = await cli(['up', '-t', 'minimal', '--name', 'full'], { env });
      const procs = (await scanLabeledProcesses()).filter((p) => p.clusterName === 'full');
      const left = (await readdir(join(dir, 'clusters')).catch(() => [] as string[]));
      const listed = await cli(['list', '--json'], { env });
      return [
        expect(r.code !== 0 && /space|ENOSPC/i.test(r.stderr), `up: exit ${r.code}: ${r.stderr.trim().split('\n').slice(-2).join(' | ')}`),
        expect(procs.length === 0, `${procs.length} process(es) of it run`),
        expect(left.length === 0, `cluster folders left: ${left.join(', ') || 'none'}`),
        expect(listed.code === 0 && listed.stdout.trim() === '[]', `list: ${listed.stdout.trim()}`),
      ];
    } finally {
      await run('umount', [dir], { allowFailure: true });
      await rm(dir, { recursive: true, force: true });
    }
  });
}

async function main(): Promise<void> {
  const home = await mkdtemp('/var/tmp/slurmkit-faults-');
  process.env.SLURMKIT_HOME = home;
  base = await baseline();
  const t0 = Date.now();
  const only = process.argv[2];
  try {
    if (!only || only === 'daemons') await daemonFaults();
    if (!only || only === 'cli') await cliFaults();
  } catch (err) {
    outcomes.push({ scenario: 'suite', checks: [expect(false, `the suite stopped: ${(err as Error).stack}`)], ms: 0 });
  } finally {
    for (const s of await readdir(join(home, 'clusters')).catch(() => [] as string[])) await down(s, { force: true }).catch(() => undefined);
    await cleanupHome(home);
  }
  const checks = outcomes.flatMap((o) => o.checks);
  const failed = checks.filter((c) => !c.ok);
  const lost = failed.filter((c) => c.invariant === 'I2');
  say('');
  say(`Fault suite: ${outcomes.length} scenarios in ${((Date.now() - t0) / 1000).toFixed(0)} s; ${checks.length - failed.length} of ${checks.length} checks passed; ${lost.length === 0 ? 'no job lost or run twice' : `${lost.length} job check(s) failed`}.`);
  for (const o of outcomes) for (const c of o.checks.filter((x) => !x.ok)) say(`  ✗ ${o.scenario}: ${c.invariant}: ${c.detail}`);
  process.exitCode = failed.length ? 1 : 0;
}

await main();
