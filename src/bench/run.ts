/** What every bench section shares: timing a child process from the outside, medians, /proc reads. */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { scanLabeledProcesses } from '../providers/local/procscan.js';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const CLI = join(ROOT, 'dist', 'cli', 'main.js');

export interface Stats {
  min: number;
  median: number;
  runs: number[];
}

export const log = (line: string): void => void process.stderr.write(`${line}\n`);
export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
export const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : Math.round((s[m - 1]! + s[m]!) / 2);
};
export const stats = (runs: number[]): Stats => ({ min: Math.min(...runs), median: median(runs), runs });

/** The child being waited on, so a signal to the bench can stop it before cleaning up. */
let current: ChildProcess | undefined;
export const currentChild = (): ChildProcess | undefined => current;

export interface Timed {
  code: number;
  /** Spawn to exit. */
  ms: number;
  /** Spawn to the first stdout chunk that matched `mark`, if any did. */
  markMs: number | undefined;
  stdout: string;
}

/** Runs a command, passing its stderr through indented, and times it from spawn. */
export function timed(cmd: string, args: string[], env: NodeJS.ProcessEnv, mark?: RegExp): Promise<Timed> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(cmd, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    current = child;
    let stdout = '';
    let markMs: number | undefined;
    child.stdout!.setEncoding('utf8').on('data', (d: string) => {
      stdout += d;
      if (mark && markMs === undefined && mark.test(stdout)) markMs = performance.now() - t0;
    });
    child.stderr!.setEncoding('utf8').on('data', (d: string) => process.stderr.write(d.replace(/^(?=.)/gm, '    ')));
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      const ms = performance.now() - t0;
      // 'close' comes after the pipes are drained, so stdout is complete.
      child.on('close', () => {
        current = undefined;
        resolve({ code: code ?? 128 + (signal ? 15 : 0), ms: Math.round(ms), markMs: markMs && Math.round(markMs), stdout });
      });
    });
  });
}

export function mustSucceed(what: string, r: Timed): Timed {
  if (r.code !== 0) throw new Error(`${what} exited with ${r.code}${r.stdout ? `: ${r.stdout.trim().slice(0, 500)}` : ''}`);
  return r;
}

/** A "Key: 123 kB" field of a /proc file, in KiB; 0 when the process is gone. */
export async function procKiB(path: string, key: string): Promise<number> {
  const text = await readFile(path, 'utf8').catch(() => '');
  return Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? 0);
}

export interface Memory {
  processes: number;
  /** PSS counts shared pages (libslurm, bash) once across the cluster, so it sums honestly. */
  pssKiBPerNode: number;
  rssKiBPerNode: number;
  slurmdRssKiB: number;
  slurmdPssKiB: number;
}

/** Memory of every process labeled with the cluster id, per node (head included). */
export async function memoryOf(clusterId: string, nodes: number): Promise<Memory> {
  const procs = (await scanLabeledProcesses()).filter((p) => p.clusterId === clusterId);
  const rows = await Promise.all(
    procs.map(async (p) => ({
      comm: p.comm,
      rss: await procKiB(`/proc/${p.pid}/status`, 'VmRSS'),
      pss: await procKiB(`/proc/${p.pid}/smaps_rollup`, 'Pss'),
    })),
  );
  const sum = (xs: number[]): number => xs.reduce((a, b) => a + b, 0);
  const slurmd = rows.filter((r) => r.comm === 'slurmd');
  return {
    processes: rows.length,
    pssKiBPerNode: Math.round(sum(rows.map((r) => r.pss)) / nodes),
    rssKiBPerNode: Math.round(sum(rows.map((r) => r.rss)) / nodes),
    slurmdRssKiB: median(slurmd.map((r) => r.rss)),
    slurmdPssKiB: median(slurmd.map((r) => r.pss)),
  };
}

/**
 * A shell loop, run as root in a node: `jobs` jobs submitted one after another as alice (from
 * /home/alice), each printing the microseconds from its sbatch to the line the job writes first.
 * With `oneAtATime`, the next job is submitted only once the one before has left the queue.
 */
export function firstLineLoop(jobs: number, opts: { partition?: string; oneAtATime?: boolean } = {}): string {
  return [
    'cd /home/alice',
    `for i in $(seq ${jobs}); do`,
    `  t0=$(date +%s%N); id=$(runuser -u alice -- sbatch --parsable${opts.partition ? ` -p ${opts.partition}` : ''} -o /dev/null --wrap 'date +%s%N > $HOME/first.$SLURM_JOB_ID')`,
    '  while [ ! -s /home/alice/first.$id ]; do sleep 0.005; done',
    '  echo $(( ($(cat /home/alice/first.$id) - t0) / 1000 ))',
    ...(opts.oneAtATime ? ['  while squeue -h -j $id 2>/dev/null | grep -q .; do sleep 0.005; done'] : []),
    'done',
  ].join('\n');
}

/** The milliseconds firstLineLoop printed. */
export const firstLineMs = (out: string): number[] => out.trim().split('\n').map((us) => Number(us) / 1000);
