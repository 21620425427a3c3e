import { readdir, readFile } from 'node:fs/promises';

/** Environment variables that label every process a local cluster starts (inherited by all of them). */
export const ENV_CLUSTER = 'SLURMKIT_CLUSTER';
export const ENV_CLUSTER_ID = 'SLURMKIT_CLUSTER_ID';
export const ENV_NODE = 'SLURMKIT_NODE';

export interface LabeledProcess {
  pid: number;
  comm: string;
  clusterName: string;
  clusterId: string;
  node: string;
  /** True for a node's init: PID 1 of its own PID namespace. */
  isNodeInit: boolean;
}

/**
 * Finds slurmkit's processes by the label in their environment, so that teardown and
 * gc work from what runs, not from what a state file remembers.
 */
export async function scanLabeledProcesses(): Promise<LabeledProcess[]> {
  const entries = await readdir('/proc');
  const found: LabeledProcess[] = [];
  await Promise.all(
    entries.map(async (entry) => {
      if (!/^\d+$/.test(entry)) return;
      let environ: string;
      try {
        environ = await readFile(`/proc/${entry}/environ`, 'latin1');
      } catch {
        return; // gone, or a kernel thread
      }
      if (!environ.includes(`${ENV_CLUSTER_ID}=`)) return;
      const env = new Map<string, string>();
      for (const kv of environ.split('\0')) {
        const eq = kv.indexOf('=');
        if (eq > 0) env.set(kv.slice(0, eq), kv.slice(eq + 1));
      }
      const clusterId = env.get(ENV_CLUSTER_ID);
      if (!clusterId) return;
      let status = '';
      try {
        status = await readFile(`/proc/${entry}/status`, 'utf8');
      } catch {
        return;
      }
      const comm = /^Name:\s*(.*)$/m.exec(status)?.[1] ?? '';
      const nspid = /^NSpid:\s*(.*)$/m.exec(status)?.[1]?.trim().split(/\s+/) ?? [];
      found.push({
        pid: Number(entry),
        comm,
        clusterName: env.get(ENV_CLUSTER) ?? '',
        clusterId,
        node: env.get(ENV_NODE) ?? '',
        isNodeInit: nspid.length >= 2 && nspid[nspid.length - 1] === '1',
      });
    }),
  );
  return found.sort((a, b) => a.pid - b.pid);
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
