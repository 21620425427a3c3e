import { readFileSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';

/** Environment variables that label every process a local cluster starts (inherited by all of them). */
export const ENV_CLUSTER = 'SLURMKIT_CLUSTER';
export const ENV_CLUSTER_ID = 'SLURMKIT_CLUSTER_ID';
export const ENV_NODE = 'SLURMKIT_NODE';
export const ENV_HOME = 'SLURMKIT_HOME_TAG';

export interface LabeledProcess {
  pid: number;
  comm: string;
  clusterName: string;
  clusterId: string;
  /** Tag of the SLURMKIT_HOME that owns it. */
  home: string;
  node: string;
  /** True for a node's init: PID 1 of its own PID namespace. */
  isNodeInit: boolean;
}

/**
 * Finds slurmkit's processes by the label in their environment, so that teardown and
 * gc work from what runs, not from what a state file remembers.
 */
export async function scanLabeledProcesses(): Promise<LabeledProcess[]> {
  const entries = (await readdir('/proc')).filter((e) => /^\d+$/.test(e));
  const found = await Promise.all(entries.map((entry) => labeledProcess(Number(entry))));
  return found.filter((p): p is LabeledProcess => p !== undefined).sort((a, b) => a.pid - b.pid);
}

/** One process, if it runs and carries a cluster's label (a zombie does not count). */
export async function labeledProcess(pid: number): Promise<LabeledProcess | undefined> {
  let environ: string;
  try {
    environ = await readFile(`/proc/${pid}/environ`, 'latin1');
  } catch {
    return undefined; // gone, or a kernel thread
  }
  if (!environ.includes(`${ENV_CLUSTER_ID}=`)) return undefined;
  const env = new Map<string, string>();
  for (const kv of environ.split('\0')) {
    const eq = kv.indexOf('=');
    if (eq > 0) env.set(kv.slice(0, eq), kv.slice(eq + 1));
  }
  const clusterId = env.get(ENV_CLUSTER_ID);
  if (!clusterId) return undefined;
  let status = '';
  try {
    status = await readFile(`/proc/${pid}/status`, 'utf8');
  } catch {
    return undefined;
  }
  if (/^State:\s*[ZX]/m.test(status)) return undefined;
  const comm = /^Name:\s*(.*)$/m.exec(status)?.[1] ?? '';
  const nspid = /^NSpid:\s*(.*)$/m.exec(status)?.[1]?.trim().split(/\s+/) ?? [];
  return {
    pid,
    comm,
    clusterName: env.get(ENV_CLUSTER) ?? '',
    clusterId,
    home: env.get(ENV_HOME) ?? '',
    node: env.get(ENV_NODE) ?? '',
    isNodeInit: nspid.length >= 2 && nspid[nspid.length - 1] === '1',
  };
}

/**
 * A process counts as alive until it has exited: a zombie holds no namespace, port or file,
 * and waiting for its reaping would wait on the host's init (some reap only every few seconds).
 */
export function isAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state !== 'Z' && state !== 'X';
  } catch {
    return false;
  }
}
