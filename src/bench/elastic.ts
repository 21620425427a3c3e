/**
 * Elastic benchmark: from submitting a job on a cluster scaled to zero until it runs, for 1 node
 * and for 8 (the agent making them through the provider as Slurm's power saving asks), next to
 * the same jobs on a cluster whose 8 nodes already run (the reference, measured in the same run);
 * and `add-node` until the new node is idle. Timed inside the head, from sbatch to RUNNING.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CLI, log, mustSucceed, stats, timed, sleep, type Stats } from './run.js';

export interface ElasticBench {
  fromZeroMs: { nodes1: Stats; nodes8: Stats };
  /** The same jobs on 8 nodes that already run: what scheduling alone costs. */
  staticMs: { nodes1: Stats; nodes8: Stats };
  addNodeMs: Stats;
  targets: { fromZero1MsMax: number; fromZero8MsMax: number; parallelClusterMedianMs: number };
  meetsTargets: { fromZero1: boolean; fromZero8: boolean };
}

/** Milliseconds from sbatch to RUNNING for an N-node job, measured in the head. */
async function submitToRunning(name: string, nodes: number, env: NodeJS.ProcessEnv): Promise<number> {
  const script = [
    't0=$(date +%s%3N)',
    `id=$(sbatch --parsable -o /dev/null -N${nodes} --wrap 'sleep 1')`,
    'until [ "$(squeue -h -j $id -o %T)" = RUNNING ]; do sleep 0.02; done',
    'echo $(( $(date +%s%3N) - t0 ))',
  ].join('\n');
  const r = mustSucceed(`job on ${nodes} node(s) of ${name}`, await timed('node', [CLI, 'exec', name, '--', 'bash', '-c', script], env));
  return Number(r.stdout.trim().split('\n').pop());
}

/** Waits until every autoscaled node is powered down again (idle~, not powering down). */
async function scaledToZero(name: string, env: NodeJS.ProcessEnv): Promise<void> {
  for (let i = 0; i < 600; i++) {
    const r = await timed('node', [CLI, 'exec', name, '--', 'bash', '-c', "squeue -h | wc -l; sinfo -h -N -o '%T'"], env);
    const [queued, ...states] = r.stdout.trim().split('\n');
    if (queued === '0' && states.length > 0 && states.every((s) => s === 'idle~')) return;
    await sleep(500);
  }
  throw new Error(`${name} did not scale back to zero`);
}

export async function benchElastic(home: string, runs: number, env: NodeJS.ProcessEnv): Promise<ElasticBench> {
  const auto = join(home, 'benchauto.yaml');
  const fixed = join(home, 'benchfixed.yaml');
  await writeFile(auto, 'name: benchauto\nnodes: [{name: c, autoscale: {minNodes: 0, maxNodes: 8, idleTimeoutSeconds: 5}}]\nstorage: {blob: none}\n');
  await writeFile(fixed, 'name: benchfixed\nnodes: [{name: c, count: 8}]\nstorage: {blob: none}\n');
  const zero1: number[] = [];
  const zero8: number[] = [];
  const static1: number[] = [];
  const static8: number[] = [];
  const add: number[] = [];
  try {
    mustSucceed('up benchauto', await timed('node', [CLI, 'up', '-f', auto], env));
    mustSucceed('up benchfixed', await timed('node', [CLI, 'up', '-f', fixed], env));
    for (let round = 1; round <= runs; round++) {
      for (const [n, out, ref] of [
        [1, zero1, static1],
        [8, zero8, static8],
      ] as const) {
        await scaledToZero('benchauto', env);
        out.push(await submitToRunning('benchauto', n, env));
        ref.push(await submitToRunning('benchfixed', n, env));
        log(`bench: elastic round ${round}: ${n} node(s) from zero ${out.at(-1)} ms, already running ${ref.at(-1)} ms`);
      }
      // add-node until idle, as the user sees it (the CLI's whole run), then the node taken away again.
      const r = mustSucceed('add-node', await timed('node', [CLI, 'add-node', 'benchfixed', '--count', '1'], env));
      add.push(r.ms);
      log(`bench: elastic round ${round}: add-node until idle ${r.ms} ms`);
      mustSucceed('terminate-node', await timed('node', [CLI, 'terminate-node', 'benchfixed', 'c9'], env));
    }
  } finally {
    for (const name of ['benchauto', 'benchfixed']) await timed('node', [CLI, 'down', name, '--force'], env).catch(() => undefined);
  }
  const fromZeroMs = { nodes1: stats(zero1), nodes8: stats(zero8) };
  return {
    fromZeroMs,
    staticMs: { nodes1: stats(static1), nodes8: stats(static8) },
    addNodeMs: stats(add),
    targets: { fromZero1MsMax: 3_000, fromZero8MsMax: 5_000, parallelClusterMedianMs: 294_000 },
    meetsTargets: { fromZero1: fromZeroMs.nodes1.median < 3_000, fromZero8: fromZeroMs.nodes8.median < 5_000 },
  };
}
