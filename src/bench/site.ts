/**
 * Site benchmark: time to ready for lab with accounting on and off.
 */
import { templateText } from '../spec/templates.js';
import { applyOverrides, parseYaml, resolveSpec } from '../spec/load.js';
import { down, up } from '../app/clusters.js';
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
  targets: { readyWithAccountingMsMax: number };
}

/** Time to ready of lab without and with accounting; short-job throughput is the throughput section's. */
export async function benchSite(home: string, runs: number): Promise<SiteBench> {
  process.env.SLURMKIT_HOME = home;
  const off: number[] = [];
  const on: number[] = [];
  let firstEver = 0;
  try {
    for (let r = 0; r < runs; r++) {
      const a = await upLab('benchsite', false);
      off.push(a.ms);
      await down('benchsite');
      // The first cluster with accounting on a machine also builds the database template.
      const b = await upLab('benchsite', true);
      if (r === 0) firstEver = b.ms;
      if (r > 0 || runs === 1) on.push(b.ms);
      log(`bench: site round ${r + 1}: ready ${a.ms} ms without accounting, ${b.ms} ms with`);
      await down('benchsite');
    }
    return {
      readyMs: { accountingOff: { median: median(off), runs: off }, accountingOn: { median: median(on), runs: on }, accountingOnFirstEver: firstEver },
      targets: { readyWithAccountingMsMax: 3_000 },
    };
  } finally {
    await down('benchsite', { force: true }).catch(() => undefined);
  }
}
