/**
 * Site benchmark: time to ready for lab with accounting on and off, and sustained
 * throughput of short jobs with accounting on.
 */
import { templateText } from '../spec/templates.js';
import { applyOverrides, parseYaml, resolveSpec } from '../spec/load.js';
import { down, up } from '../app/clusters.js';
import { runInHead } from '../cluster/nodes.js';
import type { ClusterState } from '../cluster/state.js';

const log = (line: string): void => void process.stderr.write(`${line}\n`);
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function upLab(name: string, accounting: boolean): Promise<{ state: ClusterState; ms: number }> {
  const text = await templateText('lab');
  const raw = applyOverrides(parseYaml(text, 'lab'), { name }) as Record<string, unknown>;
  raw.accounting = accounting;
  const t0 = performance.now();
  const state = await up({ config: resolveSpec(raw, 'template lab'), specText: text });
  return { state, ms: Math.round(performance.now() - t0) };
}

export interface SiteBench {
  readyMs: { accountingOff: { median: number; runs: number[] }; accountingOn: { median: number; runs: number[] }; accountingOnFirstEver: number };
  throughput: { jobs: number; wallMs: number; jobsPerSecond: number; inSacct: number };
  targets: { readyWithAccountingMsMax: number };
}

export async function benchSite(home: string, runs: number, jobs = 2000): Promise<SiteBench> {
  process.env.SLURMKIT_HOME = home;
  const off: number[] = [];
  const on: number[] = [];
  let firstEver = 0;
  for (let r = 0; r < runs; r++) {
    const a = await upLab('benchsite', false);
    off.push(a.ms);
    await down('benchsite');
    // The first cluster with accounting on a machine also builds the database template.
    const b = await upLab('benchsite', true);
    if (r === 0) firstEver = b.ms;
    else on.push(b.ms);
    log(`bench: site round ${r + 1}: ready ${a.ms} ms without accounting, ${b.ms} ms with`);
    if (r < runs - 1) await down('benchsite');
    else {
      try {
        if (on.length === 0) on.push(b.ms);
        log(`bench: ${jobs} short jobs with accounting`);
        const t0 = performance.now();
        const id = (await runInHead(b.state, `sbatch --parsable --array=1-${jobs} -o /dev/null --wrap true`)).trim();
        for (;;) {
          if ((await runInHead(b.state, `squeue -h -r -j ${id} -o %i | head -1`)).trim() === '') break;
          await new Promise((res) => setTimeout(res, 500));
        }
        const wallMs = Math.round(performance.now() - t0);
        let inSacct = 0;
        for (let i = 0; i < 40 && inSacct < jobs; i++) {
          inSacct = Number((await runInHead(b.state, `sacct -n -X -P -j ${id} -o JobID | wc -l`)).trim());
          if (inSacct < jobs) await new Promise((res) => setTimeout(res, 500));
        }
        return {
          readyMs: { accountingOff: { median: median(off), runs: off }, accountingOn: { median: median(on), runs: on }, accountingOnFirstEver: firstEver },
          throughput: { jobs, wallMs, jobsPerSecond: Math.round((jobs / wallMs) * 1000 * 10) / 10, inSacct },
          targets: { readyWithAccountingMsMax: 10_000 },
        };
      } finally {
        await down('benchsite', { force: true }).catch(() => undefined);
      }
    }
  }
  throw new Error('no rounds');
}
