import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parsePartitions, parseSacct, parseScontrolJob, parseSqueue, isFinal } from './jobs.js';

test('squeue lines become jobs; a pending job has no nodes or start, a name may hold the delimiter', () => {
  const jobs = parseSqueue(['12|alice|all|RUNNING|c[1-2]|None|2026-12-04T10:00:00|2026-12-04T10:00:01|sim', '13|bob|all|PENDING||Resources|2026-12-04T10:00:02|2026-12-04T11:00:00|a|b', ''].join('\n'));
  assert.equal(jobs.length, 2);
  assert.deepEqual([jobs[0]!.id, jobs[0]!.user, jobs[0]!.state, jobs[0]!.nodes, jobs[0]!.reason, jobs[0]!.startTime], ['12', 'alice', 'RUNNING', 'c[1-2]', '', '2026-12-04T10:00:01']);
  assert.deepEqual([jobs[1]!.state, jobs[1]!.nodes, jobs[1]!.reason, jobs[1]!.startTime, jobs[1]!.name], ['PENDING', '', 'Resources', '', 'a|b']);
});

test('sacct lines become jobs; "CANCELLED by 0" is CANCELLED and Unknown times are empty', () => {
  const [a, b] = parseSacct(['7|alice|all|COMPLETED|c1|2026-12-04T10:00:00|2026-12-04T10:00:01|2026-12-04T10:00:02|0:0|hello', '8|root|all|CANCELLED by 0|None assigned|2026-12-04T10:00:00|Unknown|2026-12-04T10:00:03|0:0|x'].join('\n'));
  assert.deepEqual([a!.id, a!.state, a!.exitCode, a!.endTime, a!.name], ['7', 'COMPLETED', '0:0', '2026-12-04T10:00:02', 'hello']);
  assert.deepEqual([b!.state, b!.startTime], ['CANCELLED', '']);
});

test('scontrol -o show job: values with spaces stay whole, the uid is dropped from the user', () => {
  const job = parseScontrolJob(
    'JobId=42 JobName=my job UserId=alice(1001) GroupId=alice(1001) JobState=COMPLETED Reason=None ExitCode=0:0 SubmitTime=2026-12-04T10:00:00 StartTime=2026-12-04T10:00:01 EndTime=2026-12-04T10:00:02 Partition=all NodeList=c1 Command=/bin/sh -c x StdOut=/home/alice/slurm-42.out',
  );
  assert.ok(job);
  assert.deepEqual([job.id, job.name, job.user, job.state, job.nodes, job.exitCode, job.stdout], ['42', 'my job', 'alice', 'COMPLETED', 'c1', '0:0', '/home/alice/slurm-42.out']);
  assert.equal(parseScontrolJob('slurm_load_jobs error: Invalid job id specified'), undefined);
  assert.ok(isFinal('COMPLETED') && isFinal('FAILED') && !isFinal('RUNNING') && !isFinal('PENDING'));
});

test('sinfo -s lines become partitions; the default one loses its "*"', () => {
  const [a, b] = parsePartitions('all*|up|infinite|1/7/0/8|c[1-8]\ndebug|up|30:00|0/2/1/3|d[1-3]\n');
  assert.deepEqual(a, { name: 'all', default: true, available: 'up', timeLimit: 'infinite', nodes: { allocated: 1, idle: 7, other: 0, total: 8 }, nodeList: 'c[1-8]' });
  assert.deepEqual([b!.name, b!.default, b!.nodes.other], ['debug', false, 1]);
});
