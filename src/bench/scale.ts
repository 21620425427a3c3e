/**
 * Scale benchmark: clusters far larger than the machine, 1+256 and 1+1,000 nodes on the local
 * provider. For each: `up` until every node is idle, memory per node (PSS), `srun -N<all> true`
 * across every node, and `down` with nothing left. The floor at 256, measured in the same run:
 * bench/baseline.sh bringing up the same Slurm by plain script (rounds interleaved).
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { scanLabeledProcesses } from '../providers/local/procscan.js';
import { CLI, ROOT, log, memoryOf, mustSucceed, sleep, stats, timed, type Memory, type Stats } from './run.js';

const BASELINE = join(ROOT, 'bench', 'baseline.sh');

export interface ScaleRun {
  workers: number;
  upMs: Stats;
  downMs: Stats;
  /** `srun -N<workers> true` from the head, wall time. */
  srunAllMs: Stats;
  memory: Memory;
  /** Processes of the cluster left after down (must be 0). */
  leftAfterDown: number;
}

export interface ScaleBench {
  sizes: ScaleRun[];
  /** bench/baseline.sh at 256 workers: until every worker is idle. */
  floor256: { upMs: Stats };
  ratio256: number;
  targets: { ratio256Max: number; pssKiBPerNodeAt1000Max: number };
  meetsTargets: { ratio256: boolean; pssAt1000: boolean; cleanDown: boolean };
}

async function oneRun(home: string, workers: number, env: NodeJS.ProcessEnv) {
  const name = `bench${workers}x`;
  const spec = join(home, `${name}.yaml`);
  await writeFile(spec, `name: ${name}\nnodes: [{name: c, count: ${workers}}]\nstorage: {blob: none}\n`);
  const up = mustSucceed(`slurmkit up ${name}`, await timed('node', [CLI, 'up', '-f', spec, '--json', '--timeout', '600'], env));
  const state = JSON.parse(up.stdout) as { id: string };
  try {
    const memory = await memoryOf(state.id, workers + 1);
    const srun = mustSucceed(`srun -N${workers}`, await timed('node', [CLI, 'exec', name, '--', 'srun', `-N${workers}`, 'true'], env));
    const down = mustSucceed(`slurmkit down ${name}`, await timed('node', [CLI, 'down', name, '--json'], env));
    const left = (await scanLabeledProcesses()).filter((p) => p.clusterId === state.id).length;
    return { upMs: up.ms, downMs: down.ms, srunMs: srun.ms, memory, left };
  } finally {
    await timed('node', [CLI, 'down', name, '--force', '--json'], env).catch(() => undefined);
  }
}

export async function benchScale(home: string, runs: number, env: NodeJS.ProcessEnv, failed: () => boolean): Promise<ScaleBench> {
  const sizes = (process.env.BENCH_SCALE_SIZES ?? '256,1000').split(',').map(Number);
  const out: ScaleRun[] = [];
  const floor: number[] = [];
  for (const workers of sizes) {
    // 1,000 nodes take minutes per round: one round.
    const rounds = workers > 256 ? 1 : runs;
    const rs: Awaited<ReturnType<typeof oneRun>>[] = [];
    for (let r = 1; r <= rounds && !failed(); r++) {
      const x = await oneRun(home, workers, env);
      rs.push(x);
      log(`bench: scale 1+${workers} round ${r}: up ${x.upMs} ms, ${x.memory.pssKiBPerNode} KiB PSS/node, srun -N${workers} ${x.srunMs} ms, down ${x.downMs} ms`);
      await sleep(2_000);
      if (workers === 256) {
        const b = mustSucceed('bench/baseline.sh 256', await timed('bash', [BASELINE, '256'], process.env, /"upMs"/));
        if (b.markMs === undefined) throw new Error(`bench/baseline.sh printed no timing: ${b.stdout}`);
        floor.push(b.markMs);
        log(`bench: scale floor 1+256 round ${r}: plain script up ${b.markMs} ms`);
        await sleep(2_000);
      }
    }
    if (rs.length === 0) break;
    const pick = <K extends 'pssKiBPerNode' | 'rssKiBPerNode' | 'slurmdRssKiB' | 'slurmdPssKiB' | 'processes'>(k: K) => stats(rs.map((x) => x.memory[k])).median;
    out.push({
      workers,
      upMs: stats(rs.map((x) => x.upMs)),
      downMs: stats(rs.map((x) => x.downMs)),
      srunAllMs: stats(rs.map((x) => x.srunMs)),
      memory: {
        processes: pick('processes'),
        pssKiBPerNode: pick('pssKiBPerNode'),
        rssKiBPerNode: pick('rssKiBPerNode'),
        slurmdRssKiB: pick('slurmdRssKiB'),
        slurmdPssKiB: pick('slurmdPssKiB'),
      },
      leftAfterDown: Math.max(...rs.map((x) => x.left)),
    });
  }
  const at256 = out.find((s) => s.workers === 256);
  const at1000 = out.find((s) => s.workers === 1000);
  const floorStats = stats(floor.length ? floor : [0]);
  const ratio256 = at256 && floor.length ? Math.round((at256.upMs.median / floorStats.median) * 100) / 100 : 0;
  const targets = { ratio256Max: 1.2, pssKiBPerNodeAt1000Max: 3 * 1024 };
  return {
    sizes: out,
    floor256: { upMs: floorStats },
    ratio256,
    targets,
    meetsTargets: {
      ratio256: ratio256 > 0 && ratio256 <= targets.ratio256Max,
      pssAt1000: at1000 !== undefined && at1000.memory.pssKiBPerNode <= targets.pssKiBPerNodeAt1000Max,
      cleanDown: out.every((s) => s.leftAfterDown === 0),
    },
  };
}
