/**
 * The sandbox's cost: time from `sbatch` to the job's first line, on a node of a sandboxed
 * partition against a node of a plain one, the same cluster, the same script (target: under
 * 100 ms added). Both times are taken in the head and on the nodes with the same clock (nodes,
 * containers too, share this machine's). On the local provider, and on docker (an engine of the
 * bench's own) where dockerd is installed.
 */
import { parseSpec } from '../spec/load.js';
import { down, up } from '../app/clusters.js';
import { runInHead } from '../cluster/nodes.js';
import { onTestEngine } from '../testing/dockerd.js';
import { firstLineLoop, firstLineMs, log, median } from './run.js';

const spec = (provider: string) => `name: benchsbx
provider: ${provider}
nodes: [{name: p, count: 1}, {name: s, count: 1}]
users: [{name: alice}]
partitions:
  - {name: plain, nodes: {group: p}}
  - {name: lab, nodes: {group: s}, sandbox: {network: none, memoryMiB: 256, pids: 128}}
`;

export interface SandboxRun {
  jobs: number;
  firstLineMs: { plain: number; sandboxed: number };
  addedMs: number;
}

export interface SandboxBench extends SandboxRun {
  /** The same on the docker provider (bubblewrap inside the node containers); null without dockerd. */
  docker: SandboxRun | null;
  targets: { addedMsMax: number };
  meetsTargets: { added: boolean; dockerAdded: boolean | null };
}

async function benchOn(provider: 'local' | 'docker', runs: number): Promise<SandboxRun> {
  const text = spec(provider);
  const state = await up({ config: parseSpec(text, 'bench'), specText: text });
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
    log(`bench: sandbox: ${provider}: sbatch to first line, median of ${plain.length}: plain ${p} ms, sandboxed ${s} ms`);
    return { jobs: plain.length, firstLineMs: { plain: p, sandboxed: s }, addedMs: s - p };
  } finally {
    await down(state.name, { force: true });
  }
}

export async function benchSandbox(home: string, runs: number): Promise<SandboxBench> {
  process.env.SLURMKIT_HOME = home;
  const local = await benchOn('local', runs);
  const docker = await onTestEngine(() => benchOn('docker', runs));
  return {
    ...local,
    docker,
    targets: { addedMsMax: 100 },
    meetsTargets: { added: local.addedMs < 100, dockerAdded: docker ? docker.addedMs < 100 : null },
  };
}
