/** Exclusive partitions on a real cluster: under load from two users, no two jobs ever share a node. */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { ClusterState } from './state.js';
import { overlaps, runRecorded } from '../testing/exclusive-runs.js';
import { withCluster } from '../testing/cluster-fixture.js';

const SPEC = `name: texcl
nodes: [{name: c, count: 4, cpus: 2}]
users: [{name: alice}, {name: bob}]
partitions: [{name: exam, exclusive: true}, {name: shared}]
`;

describe('exclusive partitions', () => {
  let state: ClusterState;
  withCluster(SPEC, (s) => (state = s));

  test('20 jobs from two users on 4 nodes: no two ever on one node at once; a shared partition does share', async () => {
    const exam = await runRecorded(state, 'exam', 'exam', 10, 0.5);
    assert.deepEqual([...new Set(exam.map((r) => r.user))].sort(), ['alice', 'bob']);
    assert.ok(new Set(exam.map((r) => r.node)).size >= 3, `jobs spread over the nodes: ${[...new Set(exam.map((r) => r.node))]}`);
    assert.deepEqual(overlaps(exam), [], 'no two jobs of the exclusive partition overlapped on a node');
    // The same nodes (2 CPUs each) without exclusive take two one-CPU jobs at a time: the check above can fail.
    const shared = await runRecorded(state, 'shared', 'shared', 4, 2);
    assert.ok(overlaps(shared).length > 0, 'jobs of the shared partition overlapped on some node');
  });
});
