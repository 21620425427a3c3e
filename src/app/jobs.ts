/**
 * Jobs on a cluster: the live queue, submitting a batch script, one job, its output, cancelling
 * it, and the history from accounting. The CLI's `exec ... sbatch` stays for people; these are
 * for programs (the server and the SDK), so every answer is typed and every failure has a code.
 */
import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { execInHead } from '../cluster/nodes.js';
import type { CallResult, CallSpec } from '../jobs/call.js';
import { shellQuote } from '../util/run.js';
import { requireState, type ClusterState } from '../cluster/state.js';
import { SINFO_PARTITION_ARGS, SQUEUE_ARGS, SACCT_FORMAT, parsePartitions, parseSacct, parseScontrolJob, parseSqueue, type JobView, type PartitionView } from '../slurm/jobs.js';
import { SlurmkitError } from '../util/errors.js';
import { asClusterUser } from './users.js';

export type { JobView, PartitionView } from '../slurm/jobs.js';

/** Where root's jobs submitted here write their output: on the shared folder every node has, readable by root only. */
const ROOT_OUTPUT = '/shared/.slurmkit-root';

/** A job's output file when it was submitted here: in the user's home (root: ROOT_OUTPUT). */
const outputFolder = (user: string | undefined): string => (user === undefined || user === 'root' ? ROOT_OUTPUT : `/home/${user}`);

async function running(cluster: string): Promise<ClusterState> {
  const state = await requireState(cluster);
  if (state.phase !== 'running') {
    throw new SlurmkitError('CONFLICT', `cluster ${cluster} is ${state.phase}, not running`, { hint: `start it first: slurmkit start ${cluster}` });
  }
  return state;
}

/** Runs a command in the head; a non-zero exit is COMMAND_FAILED with what ran and the stderr tail. */
async function inHead(state: ClusterState, command: string[], opts: { user?: string; input?: string; cwd?: string; warm?: boolean } = {}): Promise<string> {
  const r = await execInHead(state, { command, cwd: opts.cwd ?? '/', ...(opts.user ? { user: opts.user } : {}), ...(opts.input === undefined ? {} : { input: opts.input }), ...(opts.warm ? { warm: true } : {}) });
  if (r.exitCode !== 0) {
    throw new SlurmkitError('COMMAND_FAILED', `${command[0]} on ${state.name} exited with ${r.exitCode}: ${r.stderr.trim().split('\n').slice(-3).join(' ')}`);
  }
  return r.stdout;
}

const inFlight = new Map<string, Promise<JobView[]>>();

/**
 * The live queue. Callers asking while a read is under way share it (many dashboards and
 * pollers then cost one squeue, not one each); its answer is at most one read old.
 */
export function queue(cluster: string): Promise<JobView[]> {
  let read = inFlight.get(cluster);
  if (!read) {
    read = (async () => parseSqueue(await inHead(await running(cluster), ['squeue', ...SQUEUE_ARGS])))().finally(() => inFlight.delete(cluster));
    inFlight.set(cluster, read);
  }
  return read;
}

export async function partitions(cluster: string): Promise<PartitionView[]> {
  return parsePartitions(await inHead(await running(cluster), ['sinfo', ...SINFO_PARTITION_ARGS]));
}

export interface SubmitRequest {
  /** The batch script, with its #SBATCH lines. */
  script: string;
  /** A cluster user (from the spec) or root (the default). */
  user?: string;
  partition?: string;
  name?: string;
}

export interface Submitted {
  id: string;
  user: string;
  /** The file its standard output goes to, in the user's home (root: /shared/.slurmkit-root). */
  stdout: string;
}

/** Clusters (by id) in whose head this process has made root's output folder. */
const rootFolderMade = new Set<string>();

/** Submits a batch script as a cluster user; its output goes to slurm-<id>.out in their home. */
export async function submit(cluster: string, req: SubmitRequest): Promise<Submitted> {
  const state = await running(cluster);
  const as = asClusterUser(state, req.user, '/');
  const user = as.user ?? 'root';
  if (!req.script.startsWith('#!')) {
    throw new SlurmkitError('SPEC_INVALID', 'script: a batch script starts with "#!" (for example #!/bin/bash)', { hint: 'put #!/bin/bash on its first line' });
  }
  const folder = outputFolder(as.user);
  const args = ['sbatch', '--parsable', `--output=${folder}/slurm-%j.out`, `--chdir=${as.cwd === '/' ? folder : as.cwd}`];
  if (req.partition) args.push(`--partition=${req.partition}`);
  if (req.name) args.push(`--job-name=${req.name}`);
  // One command in the head per submission: root's output folder is made once per cluster, by this process.
  if (user === 'root' && !rootFolderMade.has(state.id)) {
    await inHead(state, ['install', '-d', '-m', '0700', folder]);
    rootFolderMade.add(state.id);
  }
  // sbatch reads the script last: the next one is started ahead and waits for its script.
  const out = await inHead(state, args, { input: req.script, cwd: as.user ? as.cwd : '/', warm: true, ...(as.user ? { user: as.user } : {}) });
  // --parsable prints "id" or "id;cluster".
  const id = out.trim().split(';')[0]!;
  if (!/^\d+$/.test(id)) throw new SlurmkitError('COMMAND_FAILED', `sbatch on ${cluster} printed no job id: ${out.trim()}`);
  return { id, user, stdout: `${folder}/slurm-${id}.out` };
}

const checkId = (id: string): void => {
  if (!/^\d+(_\d+)?$/.test(id)) throw new SlurmkitError('USAGE', `job id "${id}": a job id is a number (or array id like 12_3)`);
};

/** One job: from slurmctld while it knows it (MinJobAge after the end), then from accounting. */
export async function job(cluster: string, id: string): Promise<JobView> {
  checkId(id);
  const state = await running(cluster);
  const r = await execInHead(state, { command: ['scontrol', '-o', 'show', 'job', id] });
  const live = r.exitCode === 0 ? parseScontrolJob(r.stdout.split('\n')[0] ?? '') : undefined;
  if (live) return live;
  if (state.site?.accounting) {
    const [old] = parseSacct(await inHead(state, ['sacct', '-n', '-P', '-X', '-j', id, `--format=${SACCT_FORMAT}`]));
    if (old) return { ...old, stdout: `${outputFolder(old.user)}/slurm-${old.id}.out` };
  }
  throw new SlurmkitError('NOT_FOUND', `cluster ${cluster} has no job ${id}`, {
    hint: state.site?.accounting ? 'list jobs with GET /jobs or /history' : 'slurmctld forgets jobs 5 minutes after they end; turn on accounting (accounting: true) to keep them',
  });
}

/** What a job wrote to its standard output so far. */
export async function output(cluster: string, id: string): Promise<string> {
  const j = await job(cluster, id);
  const state = await running(cluster);
  const r = await execInHead(state, { command: ['cat', '--', j.stdout || `${outputFolder(j.user)}/slurm-${j.id}.out`] });
  if (r.exitCode !== 0) {
    if (j.state === 'PENDING') return '';
    throw new SlurmkitError('NOT_FOUND', `job ${id}'s output ${j.stdout} cannot be read on the head`, { hint: 'output is readable here for jobs whose output file is on /home or /shared' });
  }
  return r.stdout;
}

export async function cancel(cluster: string, id: string): Promise<void> {
  checkId(id);
  const state = await running(cluster);
  await job(cluster, id);
  await inHead(state, ['scancel', id]);
}

/** Finished and running jobs from accounting, newest last; needs `accounting: true`. */
export async function history(cluster: string, opts: { since?: string; limit?: number } = {}): Promise<JobView[]> {
  const state = await running(cluster);
  if (!state.site?.accounting) {
    throw new SlurmkitError('UNSUPPORTED', `cluster ${cluster} has no accounting, so no job history`, { hint: 'create it with accounting: true in the spec (the lab template has it)' });
  }
  const since = opts.since ?? 'now-7days';
  if (!/^[0-9A-Za-z:+\-]+$/.test(since)) throw new SlurmkitError('USAGE', `since "${since}": use a time sacct understands, e.g. 2026-12-01T00:00:00 or now-1hour`);
  const jobs = parseSacct(await inHead(state, ['sacct', '-a', '-n', '-P', '-X', '-S', since, `--format=${SACCT_FORMAT}`]));
  return opts.limit ? jobs.slice(-opts.limit) : jobs;
}


/** The runner of shipped calls, as the nodes see it (the host's Node and dist/ are on every provider's nodes). */
const RUN_CALL = fileURLToPath(new URL('../jobs/run-call.js', import.meta.url));

export interface CallRequest {
  /** A self-contained function's source (fn.toString()). */
  source: string;
  args: unknown[];
  user?: string;
  partition?: string;
}

export interface CallSubmitted {
  call: string;
  job: string;
  user: string;
}

/** Where a user's calls are kept: in their home (root: the shared root-only folder). */
const callsFolder = (user: string | undefined): string => `${outputFolder(user)}/.slurmkit/calls`;

/**
 * Ships a function call: writes call.json into a new folder of the user's, as the user, and
 * submits a job that runs it. The result is read with `callResult` once the job has ended.
 */
export async function submitCall(cluster: string, req: CallRequest): Promise<CallSubmitted> {
  const state = await running(cluster);
  const as = asClusterUser(state, req.user, '/');
  const user = as.user ?? 'root';
  const call = randomUUID();
  const folder = `${callsFolder(as.user)}/${call}`;
  const spec: CallSpec = { language: 'javascript', source: req.source, args: req.args };
  if (user === 'root') await inHead(state, ['install', '-d', '-m', '0700', ROOT_OUTPUT]);
  await inHead(state, ['bash', '-c', 'umask 077 && mkdir -p -- "$1" && cat > "$1/call.json"', 'call', folder], { input: JSON.stringify(spec), ...(as.user ? { user: as.user } : {}) });
  const script = `#!/bin/bash\nexec ${[process.execPath, RUN_CALL, folder].map(shellQuote).join(' ')}\n`;
  const sub = await submit(cluster, { script, ...(req.user ? { user: req.user } : {}), ...(req.partition ? { partition: req.partition } : {}), name: 'slurmkit-call' });
  return { call, job: sub.id, user };
}

/** A call's result: undefined while it has none (its job has not ended). */
export async function callResult(cluster: string, call: string): Promise<CallResult | undefined> {
  if (!/^[0-9a-f-]{36}$/.test(call)) throw new SlurmkitError('USAGE', `call "${call}": a call id is a UUID as returned when it was submitted`);
  const state = await running(cluster);
  // As root on the head: the folder is in one of the users' homes or root's shared folder.
  const r = await execInHead(state, {
    command: ['bash', '-c', 'for d in /home/*/.slurmkit/calls/"$1" "$2/$1"; do if [ -d "$d" ]; then cat "$d/result.json" 2>/dev/null; exit 0; fi; done; exit 3', 'call', call, callsFolder(undefined)],
  });
  if (r.exitCode === 3) throw new SlurmkitError('NOT_FOUND', `cluster ${cluster} has no call ${call}`);
  if (r.exitCode !== 0) throw new SlurmkitError('COMMAND_FAILED', `reading call ${call} on ${cluster} failed: ${r.stderr.trim()}`);
  if (r.stdout.trim() === '') return undefined;
  return JSON.parse(r.stdout) as CallResult;
}
