/**
 * `npm run bench`: how fast slurmkit brings clusters up and down, how much memory a node
 * costs, and how `up` compares with a plain bash script doing the same (bench/baseline.sh).
 * Prints one JSON document on stdout; progress goes to stderr. Must run as root.
 *
 * Everything is timed from the outside, the way a user sees it: from spawning the CLI (or
 * the script) to its exit (or, for the script, to its "all idle" line). Rounds interleave
 * slurmkit and the baseline so that load from other work on the machine hits both alike.
 *
 * BENCH_RUNS (default 3) sets the rounds; BENCH_ONLY=docker (or clusters, throughput, scale, pipeline, site,
 * swarm, elastic, serve, sandbox, course, comma-separated) runs only those sections; BENCH_IMAGE_BUILD=0 skips the docker section's
 * first image build (a minute and more).
 */
import { benchPipeline } from './pipeline.js';
import { benchSite } from './site.js';
import { benchDocker } from './docker.js';
import { benchSwarm } from './swarm.js';
import { benchElastic } from './elastic.js';
import { benchThroughput } from './throughput.js';
import { benchScale } from './scale.js';
import { benchServe } from './serve.js';
import { benchSandbox } from './sandbox.js';
import { benchCourse } from './course.js';
import { CLI, ROOT, currentChild, log, median, memoryOf, mustSucceed, sleep, stats, timed, type Memory } from './run.js';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { cpus, loadavg, release, totalmem } from 'node:os';
import { join } from 'node:path';
import { scanLabeledProcesses } from '../providers/local/procscan.js';
import type { PhaseTiming } from '../util/progress.js';

const BASELINE = join(ROOT, 'bench', 'baseline.sh');

const SIZES = [8, 64];
const BASELINE_WORKERS = 64;
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
/** Pause between runs: the kernel frees network namespaces lazily, and that work should not land in the next run. */
const SETTLE_MS = 1_000;
const TARGETS = { ratio64Max: 1.5, downMsMax: 2_000 };

interface ClusterRun {
  upMs: number;
  downMs: number;
  phases: PhaseTiming[];
  memory: Memory;
}

/** One up, measure, down of a slurmkit cluster. */
async function slurmkitRun(name: string, workers: number, spec: string, env: NodeJS.ProcessEnv): Promise<ClusterRun> {
  const up = mustSucceed(`slurmkit up ${name}`, await timed('node', [CLI, 'up', '-f', spec, '--json'], env));
  const state = JSON.parse(up.stdout) as { id: string; timings: PhaseTiming[]; totalMs: number };
  const memory = await memoryOf(state.id, workers + 1);
  if (memory.processes === 0) throw new Error(`no processes labeled ${state.id} after up: is the label still SLURMKIT_CLUSTER_ID?`);
  const down = mustSucceed(`slurmkit down ${name}`, await timed('node', [CLI, 'down', name, '--json'], env));
  const left = (await scanLabeledProcesses()).filter((p) => p.clusterId === state.id);
  if (left.length > 0) throw new Error(`down ${name} left ${left.length} process(es): ${left.map((p) => `${p.pid} ${p.comm}`).join(', ')}`);
  // What the phases do not cover: Node start-up, module loading, spec parsing, exit.
  const outside = up.ms - state.timings.reduce((a, t) => a + t.ms, 0);
  return { upMs: up.ms, downMs: down.ms, phases: [...state.timings, { phase: '(CLI process start and exit)', ms: outside }], memory };
}

/** One run of bench/baseline.sh: up is timed to its all-idle line; it reports its own teardown time. */
async function baselineRun(workers: number): Promise<{ upMs: number; downMs: number }> {
  const r = mustSucceed('bench/baseline.sh', await timed('bash', [BASELINE, String(workers)], process.env, /"upMs"/));
  const downMs = Number(/"downMs":(\d+)/.exec(r.stdout)?.[1]);
  if (r.markMs === undefined || Number.isNaN(downMs)) throw new Error(`bench/baseline.sh printed no timings: ${r.stdout}`);
  return { upMs: r.markMs, downMs };
}

/** Per phase, the median over runs (phase names are the same in every run of one size). */
function phaseMedians(runs: ClusterRun[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const { phase } of runs[0]!.phases) out[phase] = median(runs.map((r) => r.phases.find((p) => p.phase === phase)?.ms ?? 0));
  return out;
}

async function machine() {
  const slurm = await timed('slurmd', ['-V'], process.env).then((r) => r.stdout.trim(), () => 'unknown');
  return {
    cpus: cpus().length,
    memGiB: Math.round(totalmem() / 2 ** 30),
    node: process.version,
    kernel: release(),
    slurm,
    /** Other work on the machine skews timings; this says how busy it was. */
    loadAvg1AtStart: Math.round(loadavg()[0]! * 100) / 100,
  };
}

/** Sections of the document; BENCH_ONLY=docker,site (comma-separated) runs only those. */
const SECTIONS = ['clusters', 'throughput', 'scale', 'pipeline', 'site', 'docker', 'swarm', 'elastic', 'serve', 'sandbox', 'course'] as const;
type Section = (typeof SECTIONS)[number];

function chosenSections(): Set<Section> | string {
  const only = process.env.BENCH_ONLY?.split(',').map((s) => s.trim()).filter(Boolean);
  if (!only?.length) return new Set(SECTIONS);
  const unknown = only.filter((s) => !(SECTIONS as readonly string[]).includes(s));
  if (unknown.length) return `bench: BENCH_ONLY names no section ${unknown.join(', ')} (sections: ${SECTIONS.join(', ')})`;
  return new Set(only as Section[]);
}

async function main(): Promise<number> {
  if (process.getuid?.() !== 0) {
    log('bench: must run as root (it creates namespaces and bridges)');
    return 5;
  }
  const sections = chosenSections();
  if (typeof sections === 'string') {
    log(sections);
    return 2;
  }
  // A fresh SLURMKIT_HOME: the user's clusters are neither seen nor touched.
  const home = await mkdtemp('/var/tmp/slurmkit-bench-');
  const env = { ...process.env, SLURMKIT_HOME: home };
  const names = SIZES.map((n) => `bench${n}`);
  const results = new Map<number, ClusterRun[]>(SIZES.map((n) => [n, []]));
  const baseline: { upMs: number; downMs: number }[] = [];
  let failed = false;

  const stopOnSignal = (sig: NodeJS.Signals): void => {
    log(`bench: ${sig}, stopping and cleaning up`);
    failed = true;
    currentChild()?.kill('SIGTERM'); // baseline.sh tears itself down on TERM; `up` is followed by down --force below
  };
  process.on('SIGINT', stopOnSignal).on('SIGTERM', stopOnSignal);

  try {
    const info = await machine();
    log(`bench: ${JSON.stringify(info)}; SLURMKIT_HOME=${home}; ${RUNS} round(s); sections ${[...sections].join(', ')}`);
    const specs = new Map<number, string>();
    for (const n of SIZES) {
      const spec = join(home, `bench${n}.yaml`);
      // Like for like with bench/baseline.sh, which runs no blob storage.
      await writeFile(spec, `name: bench${n}\nnodes: [{name: c, count: ${n}}]\nstorage: {blob: none}\n`);
      specs.set(n, spec);
    }
    for (let round = 1; round <= RUNS && !failed && sections.has('clusters'); round++) {
      for (const n of SIZES) {
        if (failed) break;
        log(`bench: round ${round}: slurmkit 1+${n}`);
        const r = await slurmkitRun(`bench${n}`, n, specs.get(n)!, env);
        log(`bench:   up ${r.upMs} ms, down ${r.downMs} ms, ${r.memory.pssKiBPerNode} KiB PSS/node`);
        results.get(n)!.push(r);
        await sleep(SETTLE_MS);
      }
      if (failed) break;
      log(`bench: round ${round}: baseline 1+${BASELINE_WORKERS}`);
      const b = await baselineRun(BASELINE_WORKERS);
      log(`bench:   up ${b.upMs} ms, teardown ${b.downMs} ms`);
      baseline.push(b);
      await sleep(SETTLE_MS);
    }
    if (failed) throw new Error('interrupted');
    let throughput: Awaited<ReturnType<typeof benchThroughput>> | undefined;
    if (sections.has('throughput')) {
      log('bench: throughput (short jobs on lab with accounting: array, sbatch loop, srun steps; plain Slurm as reference)');
      throughput = await benchThroughput(home, RUNS, Number(process.env.BENCH_JOBS ?? 2000), () => failed);
    }
    let scale: Awaited<ReturnType<typeof benchScale>> | undefined;
    if (sections.has('scale')) {
      log('bench: scale (1+256 and 1+1,000 nodes: up, memory, srun across all, down; plain script at 256 as the floor)');
      scale = await benchScale(home, RUNS, env, () => failed);
    }
    let pipeline: Awaited<ReturnType<typeof benchPipeline>> | undefined;
    if (sections.has('pipeline')) {
      log('bench: pipeline (49 and 1,000 photos through blob storage on lab vs one process doing the same)');
      pipeline = await benchPipeline(home, RUNS);
    }
    let site: Awaited<ReturnType<typeof benchSite>> | undefined;
    if (sections.has('site')) {
      log('bench: site (time to ready with accounting on and off)');
      site = await benchSite(home, RUNS);
    }
    let docker: Awaited<ReturnType<typeof benchDocker>> | undefined;
    if (sections.has('docker')) {
      log('bench: docker (node image builds; lab on docker vs local, time to ready and memory per node)');
      docker = await benchDocker(RUNS, () => failed);
    }
    let swarm: Awaited<ReturnType<typeof benchSwarm>> | undefined;
    if (sections.has('swarm')) {
      log('bench: swarm (lab over three hosts vs docker and local, time to ready, first with the image to distribute)');
      swarm = await benchSwarm(RUNS, () => failed);
    }

    let elastic: Awaited<ReturnType<typeof benchElastic>> | undefined;
    if (sections.has('elastic')) {
      log('bench: elastic (a job on a cluster scaled to zero until it runs, 1 and 8 nodes, vs nodes already running; add-node until idle)');
      elastic = await benchElastic(home, RUNS, env);
    }

    let serve: Awaited<ReturnType<typeof benchServe>> | undefined;
    if (sections.has('serve')) {
      log('bench: serve (API submissions vs an sbatch loop, queue polling latency under 1,000 jobs, dashboard paint and live update)');
      serve = await benchServe(home, RUNS);
    }

    let sandbox: Awaited<ReturnType<typeof benchSandbox>> | undefined;
    if (sections.has('sandbox')) {
      log('bench: sandbox (sbatch to the first line of a job, on a sandboxed node and on a plain one)');
      sandbox = await benchSandbox(home, RUNS);
    }

    let course: Awaited<ReturnType<typeof benchCourse>> | undefined;
    if (sections.has('course')) {
      log('bench: course (the login node in up against the same cluster without it; run(fn) from the login node against sbatch to a first line)');
      course = await benchCourse(home, RUNS);
    }

    const clusters = sections.has('clusters')
      ? SIZES.map((n) => {
          const runs = results.get(n)!;
          const mem = (k: keyof Memory): number => median(runs.map((r) => r.memory[k]));
          return {
            workers: n,
            nodes: n + 1,
            upMs: stats(runs.map((r) => r.upMs)),
            downMs: stats(runs.map((r) => r.downMs)),
            upPhasesMedianMs: phaseMedians(runs),
            processes: mem('processes'),
            pssKiBPerNode: mem('pssKiBPerNode'),
            rssKiBPerNode: mem('rssKiBPerNode'),
            slurmdRssKiB: mem('slurmdRssKiB'),
            slurmdPssKiB: mem('slurmdPssKiB'),
          };
        })
      : undefined;
    let base: { workers: number; upMs: ReturnType<typeof stats>; downMs: ReturnType<typeof stats> } | undefined;
    let ratio64: number | undefined;
    let worstDown: number | undefined;
    if (clusters) {
      const big = clusters.find((c) => c.workers === BASELINE_WORKERS)!;
      base = { workers: BASELINE_WORKERS, upMs: stats(baseline.map((b) => b.upMs)), downMs: stats(baseline.map((b) => b.downMs)) };
      ratio64 = Math.round((big.upMs.median / base.upMs.median) * 100) / 100;
      worstDown = Math.max(...clusters.map((c) => c.downMs.median));
    }
    process.stdout.write(
      `${JSON.stringify(
        {
          machine: { ...info, loadAvg1AtEnd: Math.round(loadavg()[0]! * 100) / 100 },
          clusters,
          baseline: base,
          ratio64,
          throughput,
          scale,
          pipeline,
          site,
          docker,
          swarm,
          elastic,
          serve,
          sandbox,
          course,
          targets: {
            ...(clusters ? TARGETS : {}),
            ...(pipeline ? { pipelineRatioAt1000Min: 0.8 } : {}),
            ...(site ? { readyWithAccountingMsMax: 3_000 } : {}),
            ...(throughput ? { jobsPerSecondMin: throughput.targets.jobsPerSecondMin } : {}),
            ...(scale ? scale.targets : {}),
            ...(serve ? serve.targets : {}),
          },
          meetsTargets: {
            ...(clusters ? { ratio64: ratio64! <= TARGETS.ratio64Max, downMs: worstDown! <= TARGETS.downMsMax } : {}),
            ...(pipeline ? { pipelineRatio: pipeline.large.ratio >= 0.8, pipelineOutputs: [pipeline.demo, pipeline.large].every((p) => p.outputs.cluster === p.images && p.outputs.singleProcess === p.images && p.outputs.sampledGrayscale === p.outputs.sampled) } : {}),
            ...(site ? { readyWithAccounting: site.readyMs.accountingOn.median <= 3_000 } : {}),
            ...(serve ? serve.meetsTargets : {}),
            ...(throughput ? { throughput: throughput.meetsTargets } : {}),
            ...(scale ? { scale: scale.meetsTargets } : {}),
          },
        },
        null,
        2,
      )}\n`,
    );
  } catch (err) {
    failed = true;
    log(`bench: failed: ${(err as Error).message}`);
  } finally {
    // Whatever happened, leave no cluster behind. down is idempotent; --force also forgets a broken one.
    // (The docker section cleans up after itself: its clusters live on its own engine.)
    let clean = true;
    for (const name of [...names, 'benchlab', 'benchsite', 'benchthroughput', 'bench256x', 'bench1000x']) {
      const r = await timed('node', [CLI, 'down', name, '--force', '--json'], env).catch(() => undefined);
      if (r?.code !== 0) {
        clean = false;
        log(`bench: could not remove ${name}; retry: SLURMKIT_HOME=${home} ./bin/slurmkit down ${name} --force`);
      }
    }
    // Keep the folder if something is left: down needs the cluster records it holds.
    if (clean) await rm(home, { recursive: true, force: true });
    if (!clean) failed = true;
  }
  return failed ? 1 : 0;
}

process.exitCode = await main();
