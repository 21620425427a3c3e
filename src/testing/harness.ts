/** Shared helpers for tests that run real clusters. */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { down, gc } from '../cluster/lifecycle.js';
import { labelOf, providerFor } from '../cluster/nodes.js';
import type { ClusterState } from '../cluster/state.js';
import { listClusterEntries } from '../cluster/state.js';
import { scanLabeledProcesses } from '../providers/local/procscan.js';
import { listLabeledBridges, listLabeledRules } from '../providers/local/network.js';
import { run } from '../util/run.js';

/** A private SLURMKIT_HOME for one test file, outside /tmp (nodes get their own /tmp). */
export async function useTempHome(): Promise<string> {
  const home = await mkdtemp('/var/tmp/slurmkit-test-');
  process.env.SLURMKIT_HOME = home;
  return home;
}

/** Removes every cluster of the temp home and then the home itself; used in `after` hooks, so it never throws. */
export async function cleanupHome(home: string): Promise<void> {
  for (const s of await listClusterEntries().catch(() => [])) {
    await down(s.name, { force: true }).catch(() => undefined);
  }
  // Every folder, broken ones too; gc only takes leftovers labeled with this home, so other clusters on the machine are safe.
  await gc().catch(() => undefined);
  await rm(home, { recursive: true, force: true });
}

export async function sh(state: ClusterState, command: string, node = 'head'): Promise<{ exitCode: number; stdout: string; stderr: string }> {
  return providerFor(state).exec({ label: labelOf(state), node, command: ['bash', '-c', command], stdio: 'capture', cwd: '/' });
}

/** Like sh, but fails the test with the command's output when it exits non-zero. */
export async function shOk(state: ClusterState, command: string, node = 'head'): Promise<string> {
  const r = await sh(state, command, node);
  if (r.exitCode !== 0) throw new Error(`\`${command}\` on ${node} exited ${r.exitCode}:\n${r.stderr}${r.stdout}`);
  return r.stdout;
}

/** Waits until Slurm no longer lists the job (or any task of an array). */
export async function waitForJob(state: ClusterState, jobId: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if ((await shOk(state, `squeue -h -r -j ${jobId} -o %i 2>/dev/null || true`)).trim() === '') return;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`job ${jobId} still queued after ${timeoutMs} ms`);
}

export interface HostSnapshot {
  mounts: string;
  netns: string;
  links: string[];
  forward: string;
  files: Record<string, string>;
}

const HOST_FILES = ['/etc/hosts', '/etc/passwd', '/etc/group', '/etc/munge', '/etc/slurm'];

async function digest(path: string): Promise<string> {
  const r = await run('bash', ['-c', `find ${path} -type f -print0 2>/dev/null | sort -z | xargs -0 -r sha256sum; stat -c '%a %U' ${path}`], { allowFailure: true });
  return createHash('sha256').update(r.stdout).digest('hex');
}

/** What the host looks like from outside any cluster: compared before and after to prove nothing is left. */
export async function hostSnapshot(): Promise<HostSnapshot> {
  const links = JSON.parse((await run('ip', ['-j', 'link', 'show'])).stdout) as { ifname: string }[];
  const files: Record<string, string> = {};
  for (const f of HOST_FILES) files[f] = await digest(f);
  return {
    mounts: (await readFile('/proc/self/mounts', 'utf8')).split('\n').sort().join('\n'),
    netns: (await run('ip', ['netns', 'list'], { allowFailure: true })).stdout,
    links: links.map((l) => l.ifname).sort(),
    forward: (await run('iptables', ['-w', '-S', 'FORWARD'], { allowFailure: true })).stdout,
    files,
  };
}

/** Everything carrying this cluster's label, found the way `down` and `gc` find it. */
export async function leftoversOf(id: string): Promise<string[]> {
  const out: string[] = [];
  for (const p of await scanLabeledProcesses()) if (p.clusterId === id) out.push(`process ${p.pid} ${p.comm}`);
  for (const b of await listLabeledBridges()) if (b.clusterId === id) out.push(`bridge ${b.name}`);
  for (const r of await listLabeledRules()) if (r.clusterId === id) out.push(`rule ${r.spec.join(' ')}`);
  const links = JSON.parse((await run('ip', ['-j', 'link', 'show'])).stdout) as { ifname: string }[];
  for (const l of links) if (l.ifname.startsWith(`sk${id}`)) out.push(`link ${l.ifname}`);
  return out;
}
