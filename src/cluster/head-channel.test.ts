/** The head's command channel on a real cluster: same answers as exec, one process, and what happens when it ends. */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { stop, start } from './lifecycle.js';
import { execInHead, headOf, labelOf } from './nodes.js';
import { channelOpen, keepHeadChannels } from './head-channel.js';
import { requireState, type ClusterState } from './state.js';
import { sh } from '../testing/harness.js';
import { withCluster } from '../testing/cluster-fixture.js';

const SPEC = 'name: tchan\nnodes: [{name: c, count: 1}]\nusers: [{name: alice, groups: [students]}]\n';

/** The head's channel processes, as `pgrep` in the head sees them. */
const channelProcesses = async (state: ClusterState): Promise<string[]> =>
  (await sh(state, 'pgrep -af "[c]hannel-main.js" || true')).stdout.split('\n').filter(Boolean);

describe('command channel into the head', () => {
  let state: ClusterState;
  withCluster(SPEC, (s) => (state = s));

  test('commands answer as exec does: exit code, output, input, user and folder, through one process', async () => {
    const cases = [
      { command: ['bash', '-c', 'echo out; echo err >&2; exit 3'] },
      { command: ['cat'], input: 'line one\n' + 'x'.repeat(300_000) + '\n' },
      { command: ['bash', '-c', 'id -un; id -Gn; echo "$HOME $USER"; pwd; touch mine && stat -c %U mine && rm mine'], user: 'alice', cwd: '/home/alice' },
      { command: ['pwd'], cwd: '/no/such/folder' },
      { command: ['bash', '-c', 'squeue -h | wc -l; sinfo -h -o %T'] },
      { command: ['id', '-un'], user: 'nobody-here' },
    ];
    const byExec = [];
    for (const c of cases) byExec.push(await execInHead(state, c));
    const release = keepHeadChannels();
    try {
      for (const [i, c] of cases.entries()) {
        const r = await execInHead(state, c);
        assert.equal(r.exitCode, byExec[i]!.exitCode, `exit code of ${c.command.join(' ')}`);
        assert.ok(r.stdout === byExec[i]!.stdout, `stdout of ${c.command.join(' ')}: ${r.stdout.slice(0, 200)} vs ${byExec[i]!.stdout.slice(0, 200)}`);
        if (r.exitCode === 0 || i === 0) assert.equal(r.stderr, byExec[i]!.stderr, `stderr of ${c.command.join(' ')}`);
      }
      assert.equal(byExec[2]!.stdout, 'alice\nalice students\n/home/alice alice\n/home/alice\nalice\n');
      assert.notEqual(byExec[5]!.exitCode, 0, 'an unknown user fails on both ways');
      assert.ok(await channelOpen(labelOf(state), headOf(state).name), 'the commands went through the channel');
      // Twenty at once share the one process.
      const many = await Promise.all(Array.from({ length: 20 }, (_, i) => execInHead(state, { command: ['echo', String(i)] })));
      assert.deepEqual(many.map((r) => r.stdout), Array.from({ length: 20 }, (_, i) => `${i}\n`));
      assert.equal((await channelProcesses(state)).length, 1, 'one channel process in the head');
    } finally {
      release();
    }
    // Released: the channel ends in the head.
    for (let i = 0; i < 50 && (await channelProcesses(state)).length > 0; i++) await new Promise((r) => setTimeout(r, 100));
    assert.deepEqual(await channelProcesses(state), []);
    assert.equal(await channelOpen(labelOf(state), headOf(state).name), false);
  });

  test('a warm command is started ahead and waits for its input; one never used submits nothing', async () => {
    const sbatches = async () => (await sh(state, 'pgrep -xc sbatch || true')).stdout.trim();
    const release = keepHeadChannels();
    const ids: number[] = [];
    try {
      for (let i = 0; i < 3; i++) {
        const r = await execInHead(state, { command: ['sbatch', '--parsable', '--output=/dev/null'], input: `#!/bin/bash\necho ${i}\n`, warm: true });
        assert.equal(r.exitCode, 0, r.stderr);
        ids.push(Number(r.stdout.trim().split(';')[0]));
      }
      assert.deepEqual(ids, [ids[0]!, ids[0]! + 1, ids[0]! + 2], 'one job per request');
      assert.equal(await sbatches(), '1', 'the next sbatch waits for its script');
    } finally {
      release();
    }
    for (let i = 0; i < 50 && (await sbatches()) !== '0'; i++) await new Promise((r) => setTimeout(r, 100));
    assert.equal(await sbatches(), '0', 'the waiting sbatch ended with the channel');
    // It submitted nothing: the next job gets the next id.
    const next = (await sh(state, 'sbatch --parsable --output=/dev/null --wrap true')).stdout.trim().split(';')[0];
    assert.equal(Number(next), ids[2]! + 1);
  });

  test('a command under way when the head stops fails and is not run again; after start a new channel serves', async () => {
    const release = keepHeadChannels();
    try {
      assert.equal((await execInHead(state, { command: ['true'] })).exitCode, 0);
      const marker = `/shared/tchan-${process.pid}`;
      const under = execInHead(state, { command: ['bash', '-c', `echo run >> ${marker}; sleep 30`] }).then(
        (r) => assert.fail(`it answered ${JSON.stringify(r)}`),
        (err: Error & { code?: string }) => err,
      );
      await new Promise((r) => setTimeout(r, 500));
      await stop('tchan');
      const err = await under;
      assert.equal(err.code, 'COMMAND_FAILED');
      assert.match(err.message, /ended while a command was under way .*not run again/);
      await start('tchan');
      state = await requireState('tchan');
      assert.equal((await execInHead(state, { command: ['cat', marker] })).stdout, 'run\n', 'the command ran once');
      assert.ok(await channelOpen(labelOf(state), headOf(state).name), 'a new channel after the restart');
      assert.equal((await channelProcesses(state)).length, 1);
    } finally {
      release();
    }
  });

  test('a process that keeps channels still exits by itself once it is idle', async () => {
    const script = `
      import { keepHeadChannels } from ${JSON.stringify(new URL('./head-channel.js', import.meta.url).href)};
      import { execInHead } from ${JSON.stringify(new URL('./nodes.js', import.meta.url).href)};
      import { requireState } from ${JSON.stringify(new URL('./state.js', import.meta.url).href)};
      keepHeadChannels();
      const r = await execInHead(await requireState('tchan'), { command: ['hostname'] });
      console.log(r.stdout.trim());`;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { env: process.env, stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    const code = await Promise.race([new Promise((r) => child.once('exit', r)), new Promise((r) => setTimeout(() => r('still running'), 20_000))]);
    child.kill('SIGKILL');
    assert.equal(code, 0, 'it exited by itself');
    assert.equal(out.trim(), headOf(state).name);
    // Its channel ended with it (its stdin closed).
    for (let i = 0; i < 50 && (await channelProcesses(state)).length > 0; i++) await new Promise((r) => setTimeout(r, 100));
    assert.deepEqual(await channelProcesses(state), []);
  });
});
