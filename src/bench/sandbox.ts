/**
 * The sandbox's cost: time from `sbatch` to the job's first line, on a node of a sandboxed
 * partition against a node of a plain one, the same cluster, the same script (target: under
 * 100 ms added). Both times are taken in the head and on the nodes with the same clock (nodes
 * share this machine's).
 */
import { parseSpec } from '../spec/load.js';
import { down, up } from '../app/clusters.js';
import { runInHead } from '../cluster/nodes.js';
import { firstLineLoop, firstLineMs, log, median } from './run.js';

const SPEC = `name: benchsbx
nodes: [{name: p, count: 1}, {name: s, count: 1}]
users: [{name: alice}]
partitions:
  - {name: plain, nodes: {group: p}}
  - {name: lab, nodes: {group: s}, sandbox: {network: none, memoryMiB: 256, pids: 128}}
`;

export interface SandboxBench {
  jobs: number;
  firstLineMs: { plain: number; sandboxed: number };
  addedMs: number;
  targets: { addedMsMax: number };
  meetsTargets: { added: boolean };
}

export async function benchSandbox(home: string, runs: number): Promise<SandboxBench> {
  process.env.SLURMKIT_HOME = home;
  const state = await up({ config: parseSpec(SPEC, 'bench'), specText: SPEC });
  try {
    const jobs = Number(process.env.BENCH_SANDBOX_JOBS ?? 10) * runs;
    /** Milliseconds from sbatch to the first line of each job, one after another, as alice. */
    const firstLines = async (partition: string): Promise<number[]> => firstLineMs(await runInHead(state, firstLineLoop(jobs, { partition })));
    // Alternated, so that neither gets the quieter machine.
    const plain: number[] = [];
    const sandboxed: number[] = [];
    for (let r = 0; r < 2; r++) {
      plain.push(...(await firstLines('plain')));
      sandboxed.push(...(await firstLines('lab')));
    }
    const p = Math.round(median(plain));
    const s = Math.round(median(sandboxed));
    log(`bench: sandbox: sbatch to first line, median of ${plain.length}: plain ${p} ms, sandboxed ${s} ms`);
    return { jobs: plain.length, firstLineMs: { plain: p, sandboxed: s }, addedMs: s - p, targets: { addedMsMax: 100 }, meetsTargets: { added: s - p < 100 } };
  } finally {
    await down(state.name, { force: true });
  }
}
