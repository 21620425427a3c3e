/**
 * The server's benchmark, against `slurmkit serve` in a process of its own on a lab cluster
 * (8 workers, accounting on):
 * - submissions per second through the API against `sbatch` in a loop inside the head, the same
 *   script, same cluster: the API's throughput (8 clients at once; the target is judged on it)
 *   and one client submitting one after another (bound by each request's round trip);
 * - p50/p99 latency of GET /jobs with 10 clients polling while an array of 1,000 jobs runs,
 *   next to `squeue` itself timed inside the head under the same load;
 * - the dashboard in Chromium: first contentful paint and the node grid drawn, and the time
 *   from a CLI command that drains a node (its exit) until the page shows it, next to the time
 *   until `sinfo` in the head shows it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { launchChromium } from '../testing/browser.js';
import { templateText } from '../spec/templates.js';
import { applyOverrides, parseYaml, resolveSpec } from '../spec/load.js';
import { down, up } from '../app/clusters.js';
import { runInHead } from '../cluster/nodes.js';
import { CLI, log, median, mustSucceed, timed } from './run.js';

const SCRIPT = '#!/bin/bash\ntrue\n';

const pct = (xs: number[], p: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return Math.round(s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]! * 10) / 10;
};
const round1 = (x: number): number => Math.round(x * 10) / 10;

async function startServe(env: NodeJS.ProcessEnv): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(process.execPath, [CLI, 'serve', '--port', '0', '--json'], { env, stdio: ['ignore', 'pipe', 'inherit'] });
  const url = await new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (c: Buffer) => {
      out += c.toString();
      const line = out.split('\n')[0];
      if (out.includes('\n')) resolve((JSON.parse(line!) as { url: string }).url);
    });
    child.once('exit', (code) => reject(new Error(`slurmkit serve exited with ${code}`)));
  });
  return { child, url };
}

export interface ServeBench {
  submit: {
    jobs: number;
    api: { sequentialJobsPerSecond: number; concurrent8JobsPerSecond: number };
    /** `sbatch` in a loop inside the head: the reference. */
    sbatchLoopJobsPerSecond: number;
    ratioSequential: number;
    ratioConcurrent8: number;
  };
  pollLatency: { clients: number; jobs: number; requests: number; apiMs: { p50: number; p99: number }; squeueInHeadMs: { p50: number; p99: number } };
  dashboard: { firstContentfulPaintMs: number[]; nodeGridMs: number[]; cliChangeShownMs: number[]; sinfoShowsChangeMs: number[] };
  targets: { submitRatioMin: number };
  meetsTargets: { submitRatio: boolean };
}

export async function benchServe(home: string, runs: number): Promise<ServeBench> {
  process.env.SLURMKIT_HOME = home;
  const env = { ...process.env, SLURMKIT_HOME: home };
  const name = 'benchserve';
  const text = await templateText('lab');
  const raw = applyOverrides(parseYaml(text, 'lab'), { name }) as Record<string, unknown>;
  raw.storage = { blob: 'none' };
  const state = await up({ config: resolveSpec(raw, 'template lab'), specText: text });
  const { child, url } = await startServe(env);
  const token = (await readFile(join(home, 'server', 'token'), 'utf8')).trim();
  const headers = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
  const submitOne = async () => {
    const res = await fetch(`${url}/api/v1/clusters/${name}/jobs`, { method: 'POST', headers, body: JSON.stringify({ script: SCRIPT }) });
    if (res.status !== 201) throw new Error(`submit: ${res.status} ${await res.text()}`);
    await res.json();
  };
  const drainQueue = () => runInHead(state, 'while [ -n "$(squeue -h -o %i | head -1)" ]; do sleep 0.2; done');
  try {
    const jobs = Number(process.env.BENCH_SERVE_SUBMITS ?? 200);
    const seq: number[] = [];
    const conc: number[] = [];
    const loop: number[] = [];
    // Rounds alternate which goes first; the queue is emptied between measurements.
    // The cluster settles after `up` (nodes register, accounting starts): a few submissions first.
    for (let i = 0; i < 20; i++) await submitOne();
    await drainQueue();
    for (let r = 1; r <= runs; r++) {
      const measureApi = async () => {
        let t = performance.now();
        for (let i = 0; i < jobs; i++) await submitOne();
        seq.push(performance.now() - t);
        await drainQueue();
        t = performance.now();
        let next = 0;
        await Promise.all(Array.from({ length: 8 }, async () => { while (next++ < jobs) await submitOne(); }));
        conc.push(performance.now() - t);
        await drainQueue();
      };
      const measureLoop = async () => {
        // The same script through stdin, the same output folder, one sbatch after another.
        const out = await runInHead(state, [
          'install -d -m 0700 /shared/.slurmkit-root',
          `printf '${SCRIPT.replace(/\n/g, '\\n')}' > /tmp/bench-job.sh`,
          't0=$(date +%s%3N)',
          `for _ in $(seq ${jobs}); do sbatch --parsable --output=/shared/.slurmkit-root/slurm-%j.out --chdir=/shared/.slurmkit-root < /tmp/bench-job.sh > /dev/null; done`,
          'echo $(( $(date +%s%3N) - t0 ))',
        ].join('\n'));
        loop.push(Number(out.trim()));
        await drainQueue();
      };
      if (r % 2) {
        await measureApi();
        await measureLoop();
      } else {
        await measureLoop();
        await measureApi();
      }
      log(`bench: serve round ${r}: ${jobs} submits: API one by one ${Math.round(seq.at(-1)!)} ms, 8 at once ${Math.round(conc.at(-1)!)} ms; sbatch loop ${loop.at(-1)} ms`);
    }
    const perS = (ms: number) => round1((jobs / ms) * 1000);
    const seqRate = perS(median(seq));
    const concRate = perS(median(conc));
    const loopRate = perS(median(loop));

    // 10 clients polling the queue while an array of 1,000 short jobs runs.
    const array = Number(process.env.BENCH_SERVE_ARRAY ?? 1000);
    await runInHead(state, `sbatch --parsable --array=1-${array} -o /dev/null --wrap 'sleep 0.2' > /dev/null`);
    const windowMs = 15_000;
    const latencies: number[] = [];
    const stopAt = performance.now() + windowMs;
    const squeueTimes = runInHead(
      state,
      `end=$(( $(date +%s%3N) + ${windowMs} )); while [ $(date +%s%3N) -lt $end ]; do a=$(date +%s%N); squeue -h -a -r -o '%i|%u|%P|%T|%N|%r|%V|%S|%j' > /dev/null; b=$(date +%s%N); echo $(( (b - a) / 1000 )); sleep 0.2; done`,
    );
    await Promise.all(
      Array.from({ length: 10 }, async () => {
        while (performance.now() < stopAt) {
          const t = performance.now();
          const res = await fetch(`${url}/api/v1/clusters/${name}/jobs`, { headers });
          if (res.status !== 200) throw new Error(`poll: ${res.status}`);
          await res.json();
          latencies.push(performance.now() - t);
        }
      }),
    );
    const squeueMs = (await squeueTimes).trim().split('\n').map((us) => Number(us) / 1000);
    await runInHead(state, 'scancel --user=root; true');
    await drainQueue();
    log(`bench: serve polling: ${latencies.length} requests by 10 clients, p50 ${pct(latencies, 50)} ms p99 ${pct(latencies, 99)} ms; squeue in the head p50 ${pct(squeueMs, 50)} ms`);

    // The dashboard.
    const browser = await launchChromium();
    const fcp: number[] = [];
    const grid: number[] = [];
    const shown: number[] = [];
    const sinfo: number[] = [];
    try {
      for (let r = 1; r <= runs; r++) {
        const page = await browser.newPage({ viewport: { width: 1366, height: 900 } });
        await page.addInitScript(`sessionStorage.setItem('slurmkit-token', ${JSON.stringify(token)})`);
        const t0 = Date.now();
        await page.goto(`${url}/#/c/${name}`);
        await page.waitForSelector('.node[data-node="c8"][data-state="idle"]');
        grid.push(Date.now() - t0);
        fcp.push(round1(Number(await page.evaluate("performance.getEntriesByName('first-contentful-paint')[0]?.startTime ?? -1"))));
        for (const [to, kind] of [['drain', 'drain'], ['resume', 'idle']] as const) {
          const cmd = mustSucceed('slurmkit exec scontrol', await timed('node', [CLI, 'exec', name, '--', 'scontrol', 'update', 'nodename=c3', `state=${to}`, ...(to === 'drain' ? ['reason=bench'] : [])], env));
          void cmd;
          const exited = Date.now();
          const seen = page.waitForSelector(`.node[data-node="c3"][data-kind="${kind}"]`, { timeout: 30_000 }).then(() => Date.now() - exited);
          const slurm = runInHead(state, `t0=$(date +%s%3N); until sinfo -h -n c3 -o %T | grep -q ${to === 'drain' ? 'drain' : '^idle'}; do sleep 0.02; done; echo $(( $(date +%s%3N) - t0 ))`).then((o) => Number(o.trim()));
          shown.push(await seen);
          sinfo.push(await slurm);
        }
        await page.close();
      }
    } finally {
      await browser.close();
    }
    log(`bench: serve dashboard: first paint ${fcp.join(', ')} ms, grid ${grid.join(', ')} ms, CLI change shown after ${shown.join(', ')} ms (sinfo: ${sinfo.join(', ')} ms)`);
    const min = 0.8;
    return {
      submit: { jobs, api: { sequentialJobsPerSecond: seqRate, concurrent8JobsPerSecond: concRate }, sbatchLoopJobsPerSecond: loopRate, ratioSequential: Math.round((seqRate / loopRate) * 100) / 100, ratioConcurrent8: Math.round((concRate / loopRate) * 100) / 100 },
      pollLatency: { clients: 10, jobs: array, requests: latencies.length, apiMs: { p50: pct(latencies, 50), p99: pct(latencies, 99) }, squeueInHeadMs: { p50: pct(squeueMs, 50), p99: pct(squeueMs, 99) } },
      dashboard: { firstContentfulPaintMs: fcp, nodeGridMs: grid, cliChangeShownMs: shown, sinfoShowsChangeMs: sinfo },
      targets: { submitRatioMin: min },
      meetsTargets: { submitRatio: concRate / loopRate >= min },
    };
  } finally {
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
    await down(name, { force: true }).catch(() => undefined);
  }
}
