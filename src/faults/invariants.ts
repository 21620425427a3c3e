/**
 * The five invariants the fault suite checks after every scenario:
 * I1 nothing leaked, I2 no job lost or run twice, I3 no unexplained error in the daemons'
 * logs, I4 nodes converge to idle, I5 a drain set by someone else is untouched.
 */
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ClusterPaths, homeTag, slurmkitHome } from '../cluster/paths.js';
import { listClusterEntries, type ClusterState } from '../cluster/state.js';
import { scanLabeledProcesses } from '../providers/local/procscan.js';
import { listLabeledBridges, listLabeledRules, listNodeLinks } from '../providers/local/network.js';
import { sh } from '../testing/harness.js';
import { sleep } from '../util/run.js';

export interface Check {
  invariant: 'I1' | 'I2' | 'I3' | 'I4' | 'I5';
  ok: boolean;
  detail: string;
}

/** What the host looks like outside slurmkit's labeled resources. */
export interface Baseline {
  mounts: string[];
  netns: string;
}

export async function baseline(): Promise<Baseline> {
  return {
    mounts: (await readFile('/proc/self/mounts', 'utf8')).split('\n').filter(Boolean).sort(),
    netns: await readFile('/proc/self/ns/net', 'utf8').catch(() => ''),
  };
}

/**
 * I1: every labeled resource of this home belongs to a cluster folder that exists (and has
 * the id of that folder's state), no mount was added on the host, and SLURMKIT_HOME holds
 * nothing but cluster folders and slurmkit's cache.
 */
export async function nothingLeaked(base: Baseline): Promise<Check> {
  const entries = await listClusterEntries();
  const live = new Set(entries.flatMap((e) => (e.state ? [e.state.id] : [])));
  const tag = homeTag();
  const problems: string[] = [];
  const procs = (await scanLabeledProcesses()).filter((p) => p.home === tag && !live.has(p.clusterId));
  if (procs.length) problems.push(`${procs.length} process(es) of no cluster: ${[...new Set(procs.map((p) => `${p.comm}(${p.clusterName})`))].join(', ')}`);
  const bridges = (await listLabeledBridges()).filter((b) => b.home === tag && !live.has(b.clusterId));
  if (bridges.length) problems.push(`bridges ${bridges.map((b) => b.name).join(', ')}`);
  const rules = (await listLabeledRules()).filter((r) => r.home === tag && !live.has(r.clusterId));
  if (rules.length) problems.push(`iptables rules ${rules.map((r) => r.clusterName).join(', ')}`);
  const myIds = new Set([...(await scanLabeledProcesses()).filter((p) => p.home === tag).map((p) => p.clusterId), ...live]);
  const links = (await listNodeLinks()).filter((l) => !live.has(l.clusterId) && myIds.has(l.clusterId));
  if (links.length) problems.push(`veths ${links.map((l) => l.name).join(', ')}`);
  const mounts = (await readFile('/proc/self/mounts', 'utf8')).split('\n').filter(Boolean).sort();
  const added = mounts.filter((m) => !base.mounts.includes(m));
  if (added.length) problems.push(`host mounts added: ${added.join('; ')}`);
  const top = (await readdir(slurmkitHome()).catch(() => [] as string[])).filter((f) => !['clusters', 'cache'].includes(f));
  if (top.length) problems.push(`files in SLURMKIT_HOME outside cluster folders: ${top.join(', ')}`);
  return { invariant: 'I1', ok: problems.length === 0, detail: problems.join('; ') || `nothing of ${entries.length === 0 ? 'any' : 'a removed'} cluster left` };
}

/**
 * A job the suite follows: its wrap script records each start and end in /shared/faults under
 * the job's unique name (job ids can be given out twice when slurmctld loses a submission).
 */
export interface Tracked {
  id: string;
  tag: string;
}
export const TRACKED_JOB = (seconds: number) =>
  `mkdir -p /shared/faults; echo $SLURM_JOB_ID >> /shared/faults/$SLURM_JOB_NAME.start; sleep ${seconds}; echo $SLURM_JOB_ID >> /shared/faults/$SLURM_JOB_NAME.end`;

const REPORTED = /^(FAILED|NODE_FAIL|CANCELLED|TIMEOUT|BOOT_FAIL|OUT_OF_MEMORY|PREEMPTED|DEADLINE)/;

/**
 * I2: waits (bounded) for the tracked jobs to leave the queue, then every job has finished
 * exactly once, or Slurm reports it ended otherwise (failed, node failure, cancelled);
 * none ran to its end twice and none vanished.
 */
export async function noJobLost(
  state: ClusterState,
  tracked: Tracked[],
  opts: {
    waitMs?: number;
    keptRunning?: boolean;
    /**
     * After a slurmctld crash: a job whose start slurmctld had not saved yet runs again from the
     * beginning (Slurm saves its state at most every 5 s). Counted and reported, not a failure.
     */
    rerunAfterCrash?: boolean;
  } = {},
): Promise<Check> {
  const waitMs = opts.waitMs ?? 120_000;
  const deadline = Date.now() + waitMs;
  const jobs = tracked.map((t) => t.id);
  for (;;) {
    const queued = (await sh(state, `squeue -h -o %i -j ${jobs.join(',')} 2>/dev/null`)).stdout.trim();
    if (!queued || Date.now() > deadline) break;
    await sleep(500);
  }
  const problems: string[] = [];
  const endings: string[] = [];
  for (const { id, tag } of tracked) {
    const ends = (await sh(state, `cat /shared/faults/${tag}.end 2>/dev/null | wc -l`)).stdout.trim();
    const starts = (await sh(state, `cat /shared/faults/${tag}.start 2>/dev/null | wc -l`)).stdout.trim();
    if (opts.rerunAfterCrash && Number(ends) > 1) {
      endings.push(`${id}:done, run ${ends} times (its start was not saved by slurmctld: a Slurm limit)`);
      continue;
    }
    if (opts.keptRunning && starts !== '1') problems.push(`job ${id} was started ${starts} times: it should have kept running`);
    const info = (await sh(state, `scontrol show job ${id} -o 2>/dev/null`)).stdout;
    const slurmState = /JobState=(\S+)/.exec(info)?.[1] ?? 'unknown to slurmctld';
    const reason = /Reason=(\S+)/.exec(info)?.[1] ?? '';
    if (Number(ends) > 1) problems.push(`job ${id} ran to its end ${ends} times`);
    else if (Number(ends) === 1) endings.push(`${id}:done`);
    else if (/PENDING|RUNNING|CONFIGURING|COMPLETING|REQUEUED/.test(slurmState)) problems.push(`job ${id} still ${slurmState} (${reason}) after ${waitMs / 1000} s`);
    else if (REPORTED.test(slurmState)) endings.push(`${id}:${slurmState}`);
    else problems.push(`job ${id} vanished: no end recorded, Slurm says ${slurmState}`);
  }
  return { invariant: 'I2', ok: problems.length === 0, detail: problems.join('; ') || endings.join(' ') || 'no jobs' };
}

/** Errors every scenario may produce, each for a reason that is not a fault of slurmkit's. */
const EXPECTED_ALWAYS: RegExp[] = [
  // PMIx's app dir, removed at each step's end, is already gone (logged per step by slurmd).
  /rmdir_recursive.*spmix_appdir/,
  // slurmctld's first start has no state to recover.
  /No (job|node|partition|resv|trigger|assoc|qos|usage|last_tres|job_submit)[\w ]* state file .* to recover/i,
  /Could not open (job|node|part|resv|reservation|trigger)[\w_]* state file/i,
  /NOTE: Trying backup state save file/,
  /Incomplete (node|job|part)[\w ]* (state|data) (save|checkpoint) file/i,
  /can't stat gres.conf file/,
];

/**
 * I3: every error or fatal line the cluster's daemons logged during the scenario is one the
 * scenario explains (a daemon it killed, a node it took away).
 */
export async function noUnexplainedErrors(name: string, offsets: Map<string, number>, explained: RegExp[]): Promise<Check> {
  const logs = ClusterPaths.of(name).logs;
  const unexplained: string[] = [];
  for (const file of (await readdir(logs).catch(() => [] as string[])).filter((f) => /^(slurmctld|slurmd-.*|munged)\.log$/.test(f))) {
    const text = await readFile(join(logs, file), 'utf8').catch(() => '');
    for (const line of text.slice(offsets.get(file) ?? 0).split('\n')) {
      if (!/\b(error|fatal)\b/i.test(line)) continue;
      if ([...EXPECTED_ALWAYS, ...explained].some((re) => re.test(line))) continue;
      unexplained.push(`${file}: ${line.trim()}`);
    }
  }
  return { invariant: 'I3', ok: unexplained.length === 0, detail: unexplained.slice(0, 8).join('\n    ') || 'no unexplained error' };
}

/** Where each daemon log ends now, so I3 reads only what a scenario added. */
export async function logOffsets(name: string): Promise<Map<string, number>> {
  const logs = ClusterPaths.of(name).logs;
  const out = new Map<string, number>();
  for (const f of await readdir(logs).catch(() => [] as string[])) out.set(f, (await readFile(join(logs, f))).length);
  return out;
}

/** I4: every worker but the admin-drained ones is idle within the bound. */
export async function nodesConverge(state: ClusterState, except: string[], waitMs = 60_000): Promise<Check> {
  const workers = state.nodes.filter((n) => n.role === 'worker' && !except.includes(n.name)).map((n) => n.name);
  const deadline = Date.now() + waitMs;
  let last = '';
  while (Date.now() < deadline) {
    last = (await sh(state, `sinfo -h -N -o '%N %T' -n ${workers.join(',')}`)).stdout.trim();
    const states = new Map(last.split('\n').map((l) => l.split(' ') as [string, string]));
    if (workers.every((w) => states.get(w) === 'idle')) return { invariant: 'I4', ok: true, detail: `${workers.length} worker(s) idle` };
    await sleep(500);
  }
  return { invariant: 'I4', ok: false, detail: `not idle after ${waitMs / 1000} s: ${last.replace(/\n/g, ', ')}` };
}

export const ADMIN_REASON = 'site admin: hardware check';

/** I5: the node an administrator drained is still drained, with their reason. */
export async function adminDrainKept(state: ClusterState, node: string): Promise<Check> {
  const line = (await sh(state, `sinfo -h -N -n ${node} -o '%T|%E'`)).stdout.trim();
  const ok = /^drain/.test(line) && line.endsWith(`|${ADMIN_REASON}`);
  return { invariant: 'I5', ok, detail: ok ? `${node} still drained by its admin` : `${node} is "${line}"` };
}
