/**
 * Swarm benchmark: `lab` (head and 8 workers) over three hosts (Docker engines in network
 * namespaces of their own, src/testing/swarm.ts), next to `lab` on docker (on an engine of its
 * own on this machine, which reaches its nodes as a user's would) and on the local provider, in the same run, rounds interleaving the three.
 * The first swarm `up` finds the node image on no engine: it is made on the manager (imported
 * from the cache, slurmkit's program added) and loaded into the two others; that is reported on
 * its own ("image to distribute"), the rounds after it find the image on every engine. Then
 * the demo (49 photos) once on each provider.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import { LABEL } from '../providers/docker/engine.js';
import { haveDockerd, startTestEngine, type TestEngine } from '../testing/dockerd.js';
import { startTestSwarm, type TestSwarm } from '../testing/swarm.js';
import { templateText } from '../spec/templates.js';
import { CLI, log, mustSucceed, sleep, stats, timed, type Stats } from './run.js';

const NAMES = { local: 'benchsw-local', docker: 'benchsw-docker', swarm: 'benchsw-swarm' } as const;
type Provider = keyof typeof NAMES;
const SETTLE_MS = 1_000;

export type SwarmBench =
  | { skipped: string }
  | {
      hosts: number;
      template: string;
      workers: number;
      /** `slurmkit up` spawn to exit, lab on each provider; swarm: image present on every engine. */
      upMs: Record<Provider, Stats>;
      /** The first swarm up: node image made on the manager and loaded into the other engines. */
      swarmFirstUpMs: number;
      swarmFirstUpPhasesMs: Record<string, number>;
      /** The first docker up: node image imported into its engine (not in the rounds). */
      dockerFirstUpMs: number;
      /** Swarm median over docker median, and over local median. */
      ratios: { swarmToDocker: number; swarmToLocal: number };
      downMs: Record<Provider, Stats>;
      /** Where the swarm's nodes ran, in the last round. */
      placement: Record<string, string>;
      /** `slurmkit demo` (49 photos over lab's 8 workers, lab made and removed) on each provider, once. */
      demo: Record<Provider, { totalMs: number; batchWallMs: number; imagesPerSecond: number; perHost?: Record<string, number> }>;
    };

async function labUp(provider: Provider, env: NodeJS.ProcessEnv, specFile: string, swarm: TestSwarm, engine: TestEngine): Promise<{ upMs: number; downMs: number; phases: Record<string, number>; placement: Record<string, string> }> {
  const name = NAMES[provider];
  const args = [CLI, 'up', '-n', name, '--json', ...(provider === 'swarm' ? ['-f', specFile] : ['--template', 'lab', '--provider', provider])];
  const up = mustSucceed(`slurmkit up ${name}`, await timed('node', args, env));
  const state = JSON.parse(up.stdout) as { id: string; provider: string; timings: { phase: string; ms: number }[]; nodes: { name: string; host?: string }[] };
  if (state.provider !== provider) throw new Error(`${name} came up on ${state.provider}, not ${provider}`);
  const down = mustSucceed(`slurmkit down ${name}`, await timed('node', [CLI, 'down', name, '--json'], env));
  if (provider !== 'local') {
    const filters = { label: [`${LABEL.id}=${state.id}`] };
    const engines = provider === 'docker' ? [{ name: 'docker', engine }] : swarm.hosts;
    const left = (await Promise.all(engines.map(async (h) => (await h.engine.docker.listContainers({ all: true, filters })).map((c) => `${h.name} ${c.Names[0]}`)))).flat();
    if (left.length > 0) throw new Error(`down ${name} left ${left.join(', ')}`);
  }
  return {
    upMs: up.ms,
    downMs: down.ms,
    phases: Object.fromEntries(state.timings.map((t) => [t.phase, t.ms])),
    placement: Object.fromEntries(state.nodes.map((n) => [n.name, n.host ?? ''])),
  };
}

/** The swarm section; everything it makes (hosts, clusters, SLURMKIT_HOME) is gone when it returns. */
export async function benchSwarm(runs: number, stopped: () => boolean): Promise<SwarmBench> {
  if (!(await haveDockerd())) return { skipped: 'dockerd is not installed (scripts/setup.sh installs docker.io)' };
  const home = await mkdtemp('/var/tmp/slurmkit-bench-swarm-');
  log(`bench: swarm: starting three hosts; SLURMKIT_HOME=${home}`);
  const swarm = await startTestSwarm(3);
  const engine = await startTestEngine().catch(async (e: unknown) => {
    await swarm.stop();
    throw e;
  });
  const env = { ...process.env, SLURMKIT_HOME: home, DOCKER_HOST: engine.host };
  try {
    const spec = parse(await templateText('lab')) as Record<string, unknown>;
    spec.provider = { type: 'swarm', hosts: swarm.hosts.map((h) => ({ name: h.name, endpoint: h.engine.host })) };
    const specFile = join(home, 'lab-swarm.yaml');
    await writeFile(specFile, stringify(spec));
    log('bench: swarm: first lab on the swarm (the image reaches every engine)');
    const first = await labUp('swarm', env, specFile, swarm, engine);
    log(`bench: swarm:   up ${first.upMs} ms (${JSON.stringify(first.phases)})`);
    await sleep(SETTLE_MS);
    // The docker engine gets the image the same way once, before the rounds: they compare ready times.
    const dockerFirst = await labUp('docker', env, specFile, swarm, engine);
    log(`bench: swarm: first lab on docker (image into its engine): up ${dockerFirst.upMs} ms`);
    await sleep(SETTLE_MS);
    const results: Record<Provider, { upMs: number; downMs: number; placement: Record<string, string> }[]> = { local: [], docker: [], swarm: [] };
    for (let r = 1; r <= runs && !stopped(); r++) {
      for (const provider of ['local', 'docker', 'swarm'] as const) {
        if (stopped()) break;
        const run = await labUp(provider, env, specFile, swarm, engine);
        results[provider].push(run);
        log(`bench: swarm: round ${r}: lab on ${provider}: up ${run.upMs} ms, down ${run.downMs} ms`);
        await sleep(SETTLE_MS);
      }
    }
    // The classic exercise on each provider: the demo makes lab, converts, verifies, removes it.
    const demo = {} as Record<Provider, { totalMs: number; batchWallMs: number; imagesPerSecond: number; perHost?: Record<string, number> }>;
    for (const provider of ['local', 'docker', 'swarm'] as const) {
      if (stopped()) break;
      const where = provider === 'swarm' ? ['-f', specFile] : provider === 'docker' ? ['--provider', 'docker'] : [];
      const r = mustSucceed(`slurmkit demo (${provider})`, await timed('node', [CLI, 'demo', ...where, '--out', join(home, `demo-${provider}`), '--json'], env));
      const result = JSON.parse(r.stdout) as { totalMs: number; verified: number; batch: { wallMs: number; imagesPerSecond: number; perNode: Record<string, number> } };
      if (result.verified !== 49) throw new Error(`demo on ${provider} verified ${result.verified} of 49`);
      // Workers go over the hosts in turn: c1 on h1, c2 on h2, c3 on h3, c4 on h1, ...
      const hostOf = (node: string) => `h${((Number(node.slice(1)) - 1) % 3) + 1}`;
      const perHost: Record<string, number> = {};
      for (const [node, n] of Object.entries(result.batch.perNode)) perHost[hostOf(node)] = (perHost[hostOf(node)] ?? 0) + n;
      demo[provider] = { totalMs: result.totalMs, batchWallMs: result.batch.wallMs, imagesPerSecond: result.batch.imagesPerSecond, ...(provider === 'swarm' ? { perHost } : {}) };
      log(`bench: swarm: demo on ${provider}: ${result.totalMs} ms in all, batch ${result.batch.wallMs} ms`);
      await sleep(SETTLE_MS);
    }
    if (stopped()) throw new Error('interrupted');
    const up = Object.fromEntries((['local', 'docker', 'swarm'] as const).map((p) => [p, stats(results[p].map((x) => x.upMs))])) as Record<Provider, Stats>;
    const ratio = (a: number, b: number) => Math.round((a / b) * 100) / 100;
    return {
      hosts: swarm.hosts.length,
      template: 'lab',
      workers: 8,
      upMs: up,
      swarmFirstUpMs: first.upMs,
      swarmFirstUpPhasesMs: first.phases,
      dockerFirstUpMs: dockerFirst.upMs,
      ratios: { swarmToDocker: ratio(up.swarm.median, up.docker.median), swarmToLocal: ratio(up.swarm.median, up.local.median) },
      downMs: Object.fromEntries((['local', 'docker', 'swarm'] as const).map((p) => [p, stats(results[p].map((x) => x.downMs))])) as Record<Provider, Stats>,
      placement: results.swarm.at(-1)?.placement ?? {},
      demo,
    };
  } finally {
    for (const name of [...Object.values(NAMES), 'lab']) await timed('node', [CLI, 'down', name, '--force', '--json'], env).catch(() => undefined);
    await Promise.all([swarm.stop(), engine.stop()]);
    await rm(home, { recursive: true, force: true });
  }
}
