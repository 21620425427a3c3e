/**
 * Jobs as Slurm reports them: the live queue (squeue), one job (scontrol) and the history
 * (sacct), parsed from delimited text. Pure: no I/O. The job name goes last in every format,
 * since it is the one field a user may fill with the delimiter.
 */

export interface JobView {
  id: string;
  name: string;
  user: string;
  partition: string;
  /** Slurm's job state: PENDING, RUNNING, COMPLETED, FAILED, CANCELLED, TIMEOUT, ... */
  state: string;
  /** Nodes it runs or ran on, as a hostlist; empty while pending. */
  nodes: string;
  /** Why a pending job waits (squeue's %r); empty otherwise. */
  reason: string;
  submitTime: string;
  startTime: string;
  endTime: string;
  /** "code:signal", once it has ended. */
  exitCode: string;
  /** Where its standard output goes (scontrol only). */
  stdout: string;
}

const EMPTY: JobView = { id: '', name: '', user: '', partition: '', state: '', nodes: '', reason: '', submitTime: '', startTime: '', endTime: '', exitCode: '', stdout: '' };

/** Slurm prints "Unknown", "N/A" or "None" where a time or field has no value. */
const value = (s: string | undefined): string => (s === undefined || s === 'Unknown' || s === 'N/A' || s === '(null)' || s === 'None' ? '' : s);

/** The live queue, one line per job (arrays expanded with -r). */
export const SQUEUE_ARGS = ['-h', '-a', '-r', '-o', '%i|%u|%P|%T|%N|%r|%V|%S|%j'];

export function parseSqueue(stdout: string): JobView[] {
  return stdout
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((line) => {
      const [id, user, partition, state, nodes, reason, submit, start, ...name] = line.split('|');
      const pending = state === 'PENDING';
      return { ...EMPTY, id: id!, user: user!, partition: partition!, state: state!, nodes: value(nodes), reason: pending ? value(reason) : '', submitTime: value(submit), startTime: pending ? '' : value(start), name: name.join('|') };
    });
}

/** Accounting's record of jobs (allocations only, -X) since a time, parsable (-P uses "|"). */
export const SACCT_FORMAT = 'JobID,User,Partition,State,NodeList,Submit,Start,End,ExitCode,JobName';

export function parseSacct(stdout: string): JobView[] {
  return stdout
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((line) => {
      const [id, user, partition, state, nodes, submit, start, end, exitCode, ...name] = line.split('|');
      // "CANCELLED by 0" is one state to a user.
      const st = (state ?? '').split(' ')[0]!;
      return { ...EMPTY, id: id!, user: user!, partition: partition!, state: st, nodes: st === 'PENDING' ? '' : value(nodes), submitTime: value(submit), startTime: value(start), endTime: value(end), exitCode: value(exitCode), name: name.join('|') };
    });
}

/** `scontrol -o show job ID`: one line of Key=Value pairs. */
export function parseScontrolJob(line: string): JobView | undefined {
  const fields = new Map<string, string>();
  // A value runs up to the next " Key=", so values with spaces (a command's arguments) stay whole.
  const re = /(?:^|\s)([A-Za-z][A-Za-z0-9:/_]*)=(.*?)(?=\s[A-Za-z][A-Za-z0-9:/_]*=|$)/g;
  for (const m of line.trim().matchAll(re)) fields.set(m[1]!, m[2]!);
  if (!fields.has('JobId')) return undefined;
  const state = fields.get('JobState') ?? '';
  return {
    id: fields.get('JobId')!,
    name: fields.get('JobName') ?? '',
    user: (fields.get('UserId') ?? '').replace(/\(\d+\)$/, ''),
    partition: fields.get('Partition') ?? '',
    state,
    nodes: value(fields.get('NodeList')),
    reason: state === 'PENDING' ? value(fields.get('Reason')) : '',
    submitTime: value(fields.get('SubmitTime')),
    startTime: state === 'PENDING' ? '' : value(fields.get('StartTime')),
    endTime: value(fields.get('EndTime')),
    exitCode: value(fields.get('ExitCode')),
    stdout: value(fields.get('StdOut')),
  };
}

/** States after which a job changes no more. */
export const FINAL_STATES = ['COMPLETED', 'FAILED', 'CANCELLED', 'TIMEOUT', 'NODE_FAIL', 'PREEMPTED', 'BOOT_FAIL', 'DEADLINE', 'OUT_OF_MEMORY'] as const;

export const isFinal = (state: string): boolean => (FINAL_STATES as readonly string[]).includes(state);

export interface PartitionView {
  name: string;
  default: boolean;
  /** up, down, drain, inactive */
  available: string;
  timeLimit: string;
  nodes: { allocated: number; idle: number; other: number; total: number };
  nodeList: string;
}

/** `sinfo -s`: one line per partition; the default one's name ends in "*". */
export const SINFO_PARTITION_ARGS = ['-h', '-s', '-o', '%P|%a|%l|%F|%N'];

export function parsePartitions(stdout: string): PartitionView[] {
  return stdout
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((line) => {
      const [name, available, timeLimit, counts, nodeList] = line.split('|');
      const [allocated, idle, other, total] = (counts ?? '').split('/').map(Number);
      return {
        name: name!.replace(/\*$/, ''),
        default: name!.endsWith('*'),
        available: available!,
        timeLimit: timeLimit!,
        nodes: { allocated: allocated ?? 0, idle: idle ?? 0, other: other ?? 0, total: total ?? 0 },
        nodeList: nodeList ?? '',
      };
    });
}
