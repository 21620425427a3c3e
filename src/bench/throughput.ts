/**
 * Throughput benchmark: short jobs (`true`) on lab (8 workers x 1 CPU) with accounting on, three
 * ways users submit them: one job array, single `sbatch` calls in a loop, and `srun` steps inside
 * one allocation (eight at a time). Every figure is timed inside the head from the first
 * submission until the queue is empty, and every job (or step) must be in sacct. The reference,
 * measured in the same run: the same array on the same Slurm started by bench/baseline.sh with
 * Slurm's default settings and no accounting.
 */
import { join } from 'node:path';
import { templateText } from '../spec/templates.js';
import { applyOverrides, parseYaml, resolveSpec } from '../spec/load.js';
import { down, up } from '../app/clusters.js';
import { runInHead } from '../cluster/nodes.js';
import type { ClusterState } from '../cluster/state.js';
import { ROOT, log, median, mustSucceed, timed } from './run.js';
import { shellQuote } from '../util/run.js';

const BASELINE = join(ROOT, 'bench', 'baseline.sh');

/** Polls the queue in the head until `condition` (a squeue filter) lists nothing; prints the elapsed ms since $t0. */
const waitEmpty = (filter: string): string =>
  [`while [ -n "$(squeue -h -r ${filter} -o %i 2>/dev/null | head -1)" ]; do sleep 0.25; done`, 'echo $(( $(date +%s%3N) - t0 ))'].join('\n');

/** How many of the records sacct lists, waiting a little: slurmctld sends them to slurmdbd in the background. */
async function inSacct(state: ClusterState, command: string, want: number): Promise<number> {
  let n = 0;
  for (let i = 0; i < 60 && n < want; i++) {
    n = Number((await runInHead(state, `${command} | wc -l`)).trim());
    if (n < want) await new Promise((r) => setTimeout(r, 500));
  }
  return n;
}

export interface Rate {
  jobs: number;
  ms: { median: number; runs: number[] };
  jobsPerSecond: number;
  /** In the last run: records in sacct (jobs, or steps for `steps`); must equal `jobs`. */
  inSacct: number;
}

export interface ThroughputBench {
  array: Rate;
  sbatchLoop: Rate;
  steps: Rate;
  /** bench/baseline.sh: Slurm with its defaults, no accounting, the same 8 workers. */
  reference: { array: Rate };
  /** array jobs/s over the reference's. */
  ratioArray: number;
  targets: { jobsPerSecondMin: number };
  meetsTargets: { array: boolean; sbatchLoop: boolean; steps: boolean; allInSacct: boolean };
}

function rate(jobs: number, runs: number[], inSacct: number): Rate {
  const m = median(runs);
  return { jobs, ms: { median: m, runs }, jobsPerSecond: Math.round((jobs / m) * 1000 * 10) / 10, inSacct };
}

export async function benchThroughput(home: string, runs: number, jobs: number, failed: () => boolean): Promise<ThroughputBench> {
  process.env.SLURMKIT_HOME = home;
  const name = 'benchthroughput';
  const text = await templateText('lab');
  const raw = applyOverrides(parseYaml(text, 'lab'), { name }) as Record<string, unknown>;
  raw.storage = { blob: 'none' };
  const state = await up({ config: resolveSpec(raw, 'template lab'), specText: text });
  const loopJobs = Math.min(jobs, 500);
  const refJobs = Math.min(jobs, 200);
  try {
    const arrayRuns: number[] = [];
    const loopRuns: number[] = [];
    const stepRuns: number[] = [];
    const refRuns: number[] = [];
    let arrayIn = 0;
    let loopIn = 0;
    let stepsIn = 0;
    for (let r = 1; r <= runs && !failed(); r++) {
      // One array of `jobs` tasks.
      const a = (
        await runInHead(state, ['t0=$(date +%s%3N)', `id=$(sbatch --parsable --array=1-${jobs} -o /dev/null --wrap true)`, 'echo $id', waitEmpty('-j $id')].join('\n'))
      ).trim().split('\n');
      arrayRuns.push(Number(a[1]));
      arrayIn = await inSacct(state, `sacct -n -X -P -j ${a[0]} -o JobID`, jobs);

      // Single sbatch calls in a loop, as a script submitting a sweep would.
      const l = (
        await runInHead(
          state,
          ['t0=$(date +%s%3N)', `first=$(sbatch --parsable -o /dev/null --wrap true)`, `for _ in $(seq ${loopJobs - 1}); do sbatch -Q -o /dev/null --wrap true; done`, 'echo $first', waitEmpty('')].join('\n'),
        )
      ).trim().split('\n');
      loopRuns.push(Number(l[1]));
      const first = Number(l[0]);
      loopIn = await inSacct(state, `sacct -n -X -P -a -S now-1hours -o JobID | awk '$1 ~ /^[0-9]+$/ && $1 >= ${first} && $1 < ${first + loopJobs}'`, loopJobs);

      // srun steps in one allocation of all 8 nodes, eight in flight at a time.
      const steps = [
        `for i in $(seq ${loopJobs}); do`,
        '  while [ "$(jobs -rp | wc -l)" -ge 8 ]; do wait -n; done',
        '  srun -N1 -n1 --exact -o /dev/null true &',
        'done',
        'wait',
      ].join('\n');
      const s = (
        await runInHead(state, ['t0=$(date +%s%3N)', `id=$(sbatch --parsable -N8 -o /dev/null --wrap ${shellQuote(steps)})`, 'echo $id', waitEmpty('-j $id')].join('\n'))
      ).trim().split('\n');
      stepRuns.push(Number(s[1]));
      stepsIn = await inSacct(state, `sacct -n -P -j ${s[0]} -o JobID | grep -E '^[0-9]+\\.[0-9]+$'`, loopJobs);
      log(`bench: throughput round ${r}: array ${jobs} in ${arrayRuns.at(-1)} ms, loop ${loopJobs} in ${loopRuns.at(-1)} ms, ${loopJobs} steps in ${stepRuns.at(-1)} ms`);
    }
    await down(name, { force: true });

    // The reference: the same array on a plain Slurm with its default settings.
    for (let r = 1; r <= runs && !failed(); r++) {
      const b = mustSucceed('bench/baseline.sh', await timed('bash', [BASELINE, '8'], { ...process.env, BASELINE_ARRAY: String(refJobs) }));
      const ms = Number(/"arrayMs":(\d+)/.exec(b.stdout)?.[1]);
      if (Number.isNaN(ms)) throw new Error(`bench/baseline.sh printed no array timing: ${b.stdout}`);
      refRuns.push(ms);
      log(`bench: throughput reference round ${r}: plain Slurm, array of ${refJobs} in ${ms} ms`);
    }
    const array = rate(jobs, arrayRuns, arrayIn);
    const sbatchLoop = rate(loopJobs, loopRuns, loopIn);
    const stepsRate = rate(loopJobs, stepRuns, stepsIn);
    const reference = rate(refJobs, refRuns, refJobs);
    const min = 100;
    return {
      array,
      sbatchLoop,
      steps: stepsRate,
      reference: { array: reference },
      ratioArray: Math.round((array.jobsPerSecond / reference.jobsPerSecond) * 10) / 10,
      targets: { jobsPerSecondMin: min },
      meetsTargets: {
        array: array.jobsPerSecond >= min,
        sbatchLoop: sbatchLoop.jobsPerSecond >= min,
        steps: stepsRate.jobsPerSecond >= min,
        allInSacct: array.inSacct === jobs && sbatchLoop.inSacct === loopJobs && stepsRate.inSacct === loopJobs,
      },
    };
  } finally {
    await down(name, { force: true }).catch(() => undefined);
  }
}
