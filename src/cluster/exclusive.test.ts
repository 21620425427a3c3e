/** Exclusive partitions on a real cluster: under load from two users, no two jobs ever share a node. */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { submit } from '../app/jobs.js';
import type { ClusterState } from './state.js';
import { shOk } from '../testing/harness.js';
import { withCluster } from '../testing/cluster-fixture.js';

const SPEC = `name: texcl
nodes: [{name: c, count: 4, cpus: 2}]
users: [{name: alice}, {name: bob}]
partitions: [{name: exam, exclusive: true}, {name: shared}]
`;

interface Run {
  job: string;
  start: number;
  end: number;
  node: string;
  user: string;
}

/** A job that records when and where it ran, in its user's home. */
const recorder = (tag: string, seconds: number) =>
  `#!/bin/bash\nmkdir -p "$HOME/${tag}"\ns=$(date +%s.%N)\nsleep ${seconds}\ne=$(date +%s.%N)\necho "$SLURM_JOB_ID $s $e $(hostname) $(id -un)" > "$HOME/${tag}/$SLURM_JOB_ID"\n`;

/** Two runs on one node overlap when one starts before the other ends. */
function overlaps(runs: Run[]): [Run, Run][] {
  const found: [Run, Run][] = [];
  const byNode = new Map<string, Run[]>();
  for (const r of runs) byNode.set(r.node, [...(byNode.get(r.node) ?? []), r]);
  for (const list of byNode.values()) {
    list.sort((a, b) => a.start - b.start);
    for (let i = 1; i < list.length; i++) if (list[i]!.start < list[i - 1]!.end) found.push([list[i - 1]!, list[i]!]);
  }
  return found;
}

describe('exclusive partitions', () => {
  let state: ClusterState;
  withCluster(SPEC, (s) => (state = s));

  async function runAll(tag: string, partition: string, perUser: number, seconds: number): Promise<Run[]> {
    const ids: string[] = [];
    // Interleaved, so both users' jobs wait in the queue together.
    for (let i = 0; i < perUser; i++) {
      for (const user of ['alice', 'bob']) ids.push((await submit('texcl', { script: recorder(tag, seconds), user, partition })).id);
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

  test('20 jobs from two users on 4 nodes: no two ever on one node at once; a shared partition does share', async () => {
    const exam = await runAll('exam', 'exam', 10, 0.5);
    assert.deepEqual([...new Set(exam.map((r) => r.user))].sort(), ['alice', 'bob']);
    assert.ok(new Set(exam.map((r) => r.node)).size >= 3, `jobs spread over the nodes: ${[...new Set(exam.map((r) => r.node))]}`);
    assert.deepEqual(overlaps(exam), [], 'no two jobs of the exclusive partition overlapped on a node');
    // The same nodes (2 CPUs each) without exclusive take two one-CPU jobs at a time: the check above can fail.
    const shared = await runAll('shared', 'shared', 4, 2);
    assert.ok(overlaps(shared).length > 0, 'jobs of the shared partition overlapped on some node');
  });
});
