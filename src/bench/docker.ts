/**
 * Docker benchmark, on an engine of its own (src/testing/dockerd.ts): the node image's first
 * build and its cached imports, then time to ready of `lab` on docker (image in the engine)
 * next to `lab` on the local provider, rounds interleaving the two, and memory per node of each.
 *
 * Memory is not measured alike on both, as the providers differ: a local node is a set of
 * processes (RSS and PSS summed per node, as main.ts does), a docker node is a container whose
 * cgroup counts each page once, charged to the container that first touched it.
 */
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type Docker from 'dockerode';
import { scanLabeledProcesses } from '../providers/local/procscan.js';
import { LABEL } from '../providers/docker/engine.js';
import { defaultRecipe, ensureImage, ensureRuntime, imageCache, imageTag, recipeHash, type EnsuredImage } from '../providers/docker/image.js';
import { haveDockerd, startTestEngine, type TestEngine } from '../testing/dockerd.js';
import type { PhaseTiming } from '../util/progress.js';
import { CLI, log, median, mustSucceed, procKiB, sleep, stats, timed, type Stats } from './run.js';

const TEMPLATE = 'lab';
const NAMES = { local: 'benchdk-local', docker: 'benchdk-docker' } as const;
type Provider = keyof typeof NAMES;
const SETTLE_MS = 1_000;

const MiB = (bytes: number): number => Math.round((bytes / 2 ** 20) * 10) / 10;

interface NodeMemory {
  /** The head node, in MiB. */
  head: Record<string, number>;
  /** The median over the workers, in MiB. */
  worker: Record<string, number>;
}

interface LabRun {
  upMs: number;
  downMs: number;
  phases: PhaseTiming[];
  memory: NodeMemory;
}

export type DockerBench =
  | { skipped: string }
  | {
      engine: { version: string; storageDriver: string; cgroup: string };
      image: {
        tag: string;
        tarballMiB: number;
        imageMiB: number;
        /** mmdebstrap into an empty cache folder, then the import: ensureImage with nothing cached. */
        firstBuild: { buildMs: number; importMs: number; totalMs: number } | { skipped: string };
        /** ensureImage with the tarball cached and the image not in the engine: the import alone. */
        cachedImportMs: Stats;
        /** ensureImage with the image in the engine. */
        inEngineMs: Stats;
        /** ensureRuntime once: slurmkit's program added to the node image (once per version and engine). */
        programLayerMs: number;
      };
      lab: {
        template: string;
        workers: number;
        /** `slurmkit up --template lab [--provider docker]`, spawn to exit. */
        upMs: { local: Stats; docker: Stats; localFirstEver: number };
        /** Docker median over local median. */
        upRatio: number;
        downMs: { local: Stats; docker: Stats };
        upPhasesMedianMs: { local: Record<string, number>; docker: Record<string, number> };
        /**
         * MiB per node just after up, median over rounds. local: RSS and PSS of the node's
         * processes; docker: the container's memory usage less its page cache (usageLessCache)
         * and less its inactive file pages (what `docker stats` shows).
         */
        memoryMiB: { local: NodeMemory; docker: NodeMemory };
      };
    };

/** Each node's processes summed, the way main.ts sums a cluster's: RSS and PSS from /proc. */
async function localMemory(clusterId: string, head: string): Promise<NodeMemory> {
  const procs = (await scanLabeledProcesses()).filter((p) => p.clusterId === clusterId);
  if (procs.length === 0) throw new Error(`no processes labeled ${clusterId} after up`);
  const perNode = new Map<string, { rss: number; pss: number }>();
  for (const p of procs) {
    const [rss, pss] = await Promise.all([procKiB(`/proc/${p.pid}/status`, 'VmRSS'), procKiB(`/proc/${p.pid}/smaps_rollup`, 'Pss')]);
    const n = perNode.get(p.node) ?? { rss: 0, pss: 0 };
    perNode.set(p.node, { rss: n.rss + rss, pss: n.pss + pss });
  }
  const h = perNode.get(head) ?? { rss: 0, pss: 0 };
  const workers = [...perNode].filter(([node]) => node !== head).map(([, m]) => m);
  return {
    head: { rss: MiB(h.rss * 1024), pss: MiB(h.pss * 1024) },
    worker: { rss: MiB(median(workers.map((w) => w.rss)) * 1024), pss: MiB(median(workers.map((w) => w.pss)) * 1024) },
  };
}

/** Each node container's memory from the engine's stats (cgroup v1 or v2 fields). */
async function dockerMemory(docker: Docker, clusterId: string, head: string): Promise<NodeMemory> {
  const containers = await docker.listContainers({ filters: { label: [`${LABEL.id}=${clusterId}`] } });
  if (containers.length === 0) throw new Error(`no containers labeled ${clusterId} after up`);
  const rows = await Promise.all(
    containers.map(async (c) => {
      const s = await docker.getContainer(c.Id).stats({ stream: false, 'one-shot': true });
      const m = s.memory_stats.stats as unknown as Record<string, number | undefined>;
      const usage = s.memory_stats.usage;
      return {
        node: c.Labels[LABEL.node] ?? '',
        usageLessCache: usage - (m.total_cache ?? m.cache ?? m.file ?? 0),
        dockerStats: usage - (m.total_inactive_file ?? m.inactive_file ?? 0),
      };
    }),
  );
  const h = rows.find((r) => r.node === head);
  if (!h) throw new Error(`no container for the head ${head} of ${clusterId}`);
  const workers = rows.filter((r) => r !== h);
  return {
    head: { usageLessCache: MiB(h.usageLessCache), dockerStats: MiB(h.dockerStats) },
    worker: { usageLessCache: MiB(median(workers.map((w) => w.usageLessCache))), dockerStats: MiB(median(workers.map((w) => w.dockerStats))) },
  };
}

/** One up, measure, down of lab on one provider, through the CLI as a user runs it. */
async function labRun(provider: Provider, env: NodeJS.ProcessEnv, docker: Docker): Promise<LabRun> {
  const name = NAMES[provider];
  const args = [CLI, 'up', '--template', TEMPLATE, '-n', name, '--json', ...(provider === 'docker' ? ['--provider', 'docker'] : [])];
  const up = mustSucceed(`slurmkit up ${name}`, await timed('node', args, env));
  const state = JSON.parse(up.stdout) as { id: string; provider: string; timings: PhaseTiming[]; nodes: { name: string; role: string }[] };
  if (state.provider !== provider) throw new Error(`${name} came up on ${state.provider}, not ${provider}`);
  const head = state.nodes.find((n) => n.role === 'head')!.name;
  const memory = provider === 'docker' ? await dockerMemory(docker, state.id, head) : await localMemory(state.id, head);
  const down = mustSucceed(`slurmkit down ${name}`, await timed('node', [CLI, 'down', name, '--json'], env));
  const left =
    provider === 'docker'
      ? (await docker.listContainers({ all: true, filters: { label: [`${LABEL.id}=${state.id}`] } })).map((c) => c.Names[0] ?? c.Id)
      : (await scanLabeledProcesses()).filter((p) => p.clusterId === state.id).map((p) => `${p.pid} ${p.comm}`);
  if (left.length > 0) throw new Error(`down ${name} left ${left.join(', ')}`);
  const outside = up.ms - state.timings.reduce((a, t) => a + t.ms, 0);
  return { upMs: up.ms, downMs: down.ms, phases: [...state.timings, { phase: '(CLI process start and exit)', ms: outside }], memory };
}

function phaseMedians(runs: LabRun[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const { phase } of runs[0]!.phases) out[phase] = median(runs.map((r) => r.phases.find((p) => p.phase === phase)?.ms ?? 0));
  return out;
}

/** Per field, the median over rounds. */
function memoryMedians(runs: LabRun[]): NodeMemory {
  const of = (part: 'head' | 'worker'): Record<string, number> =>
    Object.fromEntries(Object.keys(runs[0]!.memory[part]).map((k) => [k, median(runs.map((r) => r.memory[part][k]! * 10)) / 10]));
  return { head: of('head'), worker: of('worker') };
}

async function timedEnsure(docker: Docker, expect: EnsuredImage['source'], onLog?: (line: string) => void): Promise<number> {
  const t0 = performance.now();
  const got = await ensureImage(docker, defaultRecipe(), onLog);
  const ms = Math.round(performance.now() - t0);
  if (got.source !== expect) throw new Error(`ensureImage took the image from ${got.source}, expected ${expect}`);
  return ms;
}

async function benchImage(engine: TestEngine, runs: number, stopped: () => boolean) {
  const { docker } = engine;
  const tag = imageTag(defaultRecipe());
  const build = process.env.BENCH_IMAGE_BUILD !== '0';
  const previousCache = process.env.SLURMKIT_IMAGE_CACHE;
  // An empty cache folder, so that ensureImage really builds; with BENCH_IMAGE_BUILD=0, the usual cache.
  const buildCache = build ? await mkdtemp('/var/tmp/slurmkit-bench-images-') : undefined;
  if (buildCache) process.env.SLURMKIT_IMAGE_CACHE = buildCache;
  try {
    let firstBuild: { buildMs: number; importMs: number; totalMs: number } | { skipped: string };
    if (build) {
      log(`bench: docker: building ${tag} with mmdebstrap into ${buildCache}`);
      const t0 = performance.now();
      let importAt = 0;
      const totalMs = await timedEnsure(docker, 'built', (line) => {
        if (line.startsWith('importing')) importAt = performance.now();
      });
      const buildMs = Math.round(importAt - t0);
      firstBuild = { buildMs, importMs: totalMs - buildMs, totalMs };
      log(`bench:   built in ${buildMs} ms, imported in ${totalMs - buildMs} ms`);
    } else {
      firstBuild = { skipped: 'BENCH_IMAGE_BUILD=0' };
      const got = await ensureImage(docker, defaultRecipe(), (line) => log(`bench: docker: ${line}`));
      log(`bench: docker: image from the ${got.source === 'built' ? 'cache, built just now' : got.source} (${imageCache()})`);
    }
    const cached: number[] = [];
    const inEngine: number[] = [];
    for (let r = 1; r <= runs && !stopped(); r++) {
      await docker.getImage(tag).remove();
      cached.push(await timedEnsure(docker, 'cache'));
      inEngine.push(await timedEnsure(docker, 'engine'));
      log(`bench: docker: image round ${r}: import from the cache ${cached.at(-1)} ms, in the engine ${inEngine.at(-1)} ms`);
    }
    const tarball = (await stat(join(imageCache(), `${recipeHash(defaultRecipe())}.tar`))).size;
    const image = (await docker.getImage(tag).inspect()).Size;
    // Made here once, so that no cluster's time to ready below includes it.
    const t0 = performance.now();
    await ensureRuntime(docker, { tag, source: 'engine' });
    const programLayerMs = Math.round(performance.now() - t0);
    log(`bench: docker: slurmkit's program added to the image in ${programLayerMs} ms`);
    return { tag, tarballMiB: MiB(tarball), imageMiB: MiB(image), firstBuild, cachedImportMs: stats(cached), inEngineMs: stats(inEngine), programLayerMs };
  } finally {
    if (previousCache === undefined) delete process.env.SLURMKIT_IMAGE_CACHE;
    else process.env.SLURMKIT_IMAGE_CACHE = previousCache;
    if (buildCache) await rm(buildCache, { recursive: true, force: true });
  }
}

/**
 * The docker section. `stopped` says the bench was interrupted: no further round starts.
 * Everything it makes (engine, clusters, image cache, SLURMKIT_HOME) is gone when it returns.
 */
export async function benchDocker(runs: number, stopped: () => boolean): Promise<DockerBench> {
  if (!(await haveDockerd())) return { skipped: 'dockerd is not installed (scripts/setup.sh installs docker.io)' };
  const home = await mkdtemp('/var/tmp/slurmkit-bench-docker-');
  log(`bench: docker: starting a private engine; SLURMKIT_HOME=${home}`);
  const engine = await startTestEngine();
  // DOCKER_HOST for the CLI children only: this process talks to the engine through engine.docker.
  const env = { ...process.env, SLURMKIT_HOME: home, DOCKER_HOST: engine.host };
  let clean = true;
  let result: DockerBench;
  try {
    const version = await engine.docker.version();
    const info = (await engine.docker.info()) as { Driver?: string; CgroupVersion?: string };
    const image = await benchImage(engine, runs, stopped);

    // The first cluster with accounting in a SLURMKIT_HOME builds the MariaDB template that
    // every later one copies, whichever the provider: that run is reported on its own.
    log(`bench: docker: first ${TEMPLATE} in this SLURMKIT_HOME (local; builds the MariaDB template)`);
    const first = await labRun('local', env, engine.docker);
    await sleep(SETTLE_MS);
    const results: Record<Provider, LabRun[]> = { local: [], docker: [] };
    for (let r = 1; r <= runs && !stopped(); r++) {
      for (const provider of ['local', 'docker'] as const) {
        if (stopped()) break;
        const run = await labRun(provider, env, engine.docker);
        results[provider].push(run);
        log(`bench: docker: round ${r}: ${TEMPLATE} on ${provider}: up ${run.upMs} ms, down ${run.downMs} ms, head ${JSON.stringify(run.memory.head)} MiB, worker ${JSON.stringify(run.memory.worker)} MiB`);
        await sleep(SETTLE_MS);
      }
    }
    if (stopped()) throw new Error('interrupted');
    const up = { local: stats(results.local.map((r) => r.upMs)), docker: stats(results.docker.map((r) => r.upMs)) };
    result = {
      engine: { version: version.Version, storageDriver: info.Driver ?? 'unknown', cgroup: info.CgroupVersion ?? 'unknown' },
      image,
      lab: {
        template: TEMPLATE,
        workers: 8,
        upMs: { ...up, localFirstEver: first.upMs },
        upRatio: Math.round((up.docker.median / up.local.median) * 100) / 100,
        downMs: { local: stats(results.local.map((r) => r.downMs)), docker: stats(results.docker.map((r) => r.downMs)) },
        upPhasesMedianMs: { local: phaseMedians(results.local), docker: phaseMedians(results.docker) },
        memoryMiB: { local: memoryMedians(results.local), docker: memoryMedians(results.docker) },
      },
    };
  } finally {
    // Whatever happened, no cluster is left behind: down is idempotent, --force forgets a broken one.
    for (const name of Object.values(NAMES)) {
      const r = await timed('node', [CLI, 'down', name, '--force', '--json'], env).catch(() => undefined);
      if (r?.code !== 0) {
        clean = false;
        log(`bench: docker: could not remove ${name}; retry: SLURMKIT_HOME=${home} DOCKER_HOST=${engine.host} ./bin/slurmkit down ${name} --force`);
      }
    }
    await engine.stop();
    if (clean) await rm(home, { recursive: true, force: true });
    else log(`bench: docker: kept ${home}`);
  }
  if (!clean) throw new Error('docker: a cluster could not be removed (see above)');
  return result;
}
