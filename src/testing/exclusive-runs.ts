/** Jobs that record when and where they ran, for the tests of exclusive partitions. */
import assert from 'node:assert/strict';
import { submit } from '../app/jobs.js';
import type { ClusterState } from '../cluster/state.js';
import { shOk } from './harness.js';

export interface Run {
  job: string;
  start: number;
  end: number;
  node: string;
  user: string;
}

/** A job that records when and where it ran, in its user's home. */
const recorder = (tag: string, seconds: number) =>
  `#!/bin/bash\nmkdir -p "$HOME/${tag}"\ns=$(date +%s.%N)\nsleep ${seconds}\ne=$(date +%s.%N)\necho "$SLURM_JOB_ID $s $e $(hostname) $(id -un)" > "$HOME/${tag}/$SLURM_JOB_ID"\n`;

/** Pairs of runs on one node where one started before the other ended. */
export function overlaps(runs: Run[]): [Run, Run][] {
  const found: [Run, Run][] = [];
  const byNode = new Map<string, Run[]>();
  for (const r of runs) byNode.set(r.node, [...(byNode.get(r.node) ?? []), r]);
  for (const list of byNode.values()) {
    list.sort((a, b) => a.start - b.start);
    for (let i = 1; i < list.length; i++) if (list[i]!.start < list[i - 1]!.end) found.push([list[i - 1]!, list[i]!]);
  }
  return found;
}

/**
 * Submits `perUser` recording jobs for each of alice and bob, interleaved (so both users' jobs
 * wait in the queue together), waits until none is queued, and returns every job's run: each
 * job ran, once.
 */
export async function runRecorded(state: ClusterState, tag: string, partition: string, perUser: number, seconds: number): Promise<Run[]> {
  const ids: string[] = [];
  for (let i = 0; i < perUser; i++) {
    for (const user of ['alice', 'bob']) ids.push((await submit(state.name, { script: recorder(tag, seconds), user, partition })).id);
  }
  const deadline = Date.now() + 120_000;
  while ((await shOk(state, `squeue -h -o %i -j ${ids.join(',')} 2>/dev/null || true`)).trim() !== '') {
    assert.ok(Date.now() < deadline, `jobs of ${tag} still queued after 120 s`);
    await new Promise((r) => setTimeout(r, 300));
  }
  const lines = (await shOk(state, `cat /home/alice/${tag}/* /home/bob/${tag}/*`)).trim().split('\n');
  const runs = lines.map((l) => {
    const [job, start, end, node, user] = l.split(' ');
    return { job: job!, start: Number(start), end: Number(end), node: node!, user: user! };
  });
  assert.deepEqual(runs.map((r) => r.job).sort(), [...ids].sort(), 'every job ran, once');
  return runs;
}
