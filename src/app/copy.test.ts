/**
 * `slurmkit cp` on every provider, through the CLI as a user runs it: a folder into a node and
 * back, owner and mode kept; a file under a new name; `--user` writes as that user and is held to
 * their permissions; bad arguments name the argument and change nothing. One small cluster per
 * provider (docker on an engine of this file's own), without accounting.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { chmod, mkdir, mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { down, up } from './clusters.js';
import { parseSpec } from '../spec/load.js';
import { cleanupHome, shOk, useTempHome } from '../testing/harness.js';
import { runCli } from '../testing/cli.js';
import { useTestEngine } from '../testing/dockerd.js';
import type { ClusterState } from '../cluster/state.js';

const docker = await useTestEngine({ before, after });

for (const provider of ['local', 'docker'] as const) {
  describe(`slurmkit cp on provider ${provider}`, { skip: provider === 'docker' && docker.skip }, () => {
    let home = '';
    let work = '';
    let state: ClusterState;
    const name = `cp-${provider}`;
    before(async () => {
      home = await useTempHome();
      work = await mkdtemp('/var/tmp/slurmkit-cp-');
      const text = `name: ${name}\nprovider: ${provider}\nnodes: [{name: c, count: 1}]\nstorage: {blob: none}\nusers: [{name: alice}, {name: bob}]\n`;
      state = await up({ config: parseSpec(text, 'test'), specText: text });
    });
    after(async () => {
      await down(name).catch(() => undefined);
      await cleanupHome(home);
      await rm(work, { recursive: true, force: true });
    });
    const cli = (...args: string[]) => runCli(['cp', ...args], { home });

    test('a folder goes into a node and comes back, modes kept; a file lands under a new name', async () => {
      const src = join(work, 'job');
      await mkdir(join(src, 'data'), { recursive: true });
      await writeFile(join(src, 'run.sh'), '#!/bin/bash\necho ran\n');
      await chmod(join(src, 'run.sh'), 0o750);
      await writeFile(join(src, 'data', 'in.txt'), 'x'.repeat(100_000));
      const into = await cli(src, `${name}:c1:/shared/`);
      assert.equal(into.code, 0, into.stderr);
      assert.match(into.stdout, new RegExp(`Copied 2 file\\(s\\), 100\\d{3} bytes from .* to ${name}:c1:/shared/`));
      // Seen from the head too: /shared is the cluster's.
      assert.equal(await shOk(state, 'stat -c "%a %U" /shared/job/run.sh && /shared/job/run.sh'), '750 root\nran\n');
      assert.equal((await shOk(state, 'wc -c < /shared/job/data/in.txt')).trim(), '100000');

      // Into /shared: on the local provider a node's /root is this machine's.
      const renamed = await cli(join(src, 'run.sh'), `${name}:/shared/renamed.sh`);
      assert.equal(renamed.code, 0, renamed.stderr);
      assert.equal(await shOk(state, 'cat /shared/renamed.sh'), '#!/bin/bash\necho ran\n');

      const back = join(work, 'back');
      await mkdir(back);
      const out = await cli(`${name}:/shared/job`, back, '--json');
      assert.equal(out.code, 0, out.stderr);
      assert.deepEqual(JSON.parse(out.stdout).files, 2);
      assert.deepEqual((await readdir(join(back, 'job'))).sort(), ['data', 'run.sh']);
      assert.equal((await stat(join(back, 'job', 'run.sh'))).mode & 0o777, 0o750);
      assert.equal(await readFile(join(back, 'job', 'data', 'in.txt'), 'utf8'), 'x'.repeat(100_000));
    });

    test('--user writes as that user and is held to their permissions', async () => {
      const file = join(work, 'notes.txt');
      await writeFile(file, 'alice was here\n');
      const r = await cli(file, `${name}:/home/alice/`, '--user', 'alice');
      assert.equal(r.code, 0, r.stderr);
      assert.equal((await shOk(state, 'stat -c %U /home/alice/notes.txt; chmod 600 /home/alice/notes.txt', 'c1')).trim(), 'alice');
      const denied = await cli(`${name}:/home/alice/notes.txt`, join(work, 'stolen.txt'), '--user', 'bob');
      assert.notEqual(denied.code, 0);
      assert.match(denied.stderr, /no \/home\/alice\/notes.txt on head that bob can see/);
      assert.equal(await stat(join(work, 'stolen.txt')).catch(() => undefined), undefined, 'a failed copy wrote a file');
      const intoOther = await cli(file, `${name}:/home/alice/`, '--user', 'bob');
      assert.notEqual(intoOther.code, 0, 'bob wrote into alice’s home');
    });

    test('bad arguments name the argument and the fix, and change nothing', async () => {
      const both = await cli('a', 'b');
      assert.equal(both.code, 2);
      assert.match(both.stderr, /one of SRC and DEST is a place in a cluster/);
      const relative = await cli(join(work, 'notes.txt'), `${name}:relative/path`);
      assert.equal(relative.code, 2);
      assert.match(relative.stderr, /DEST .*the path in a node must be absolute/);
      const missing = await cli(join(work, 'nope'), `${name}:/shared/`);
      assert.equal(missing.code, 3);
      assert.match(missing.stderr, /SRC .*nope does not exist/);
      const noFolder = await cli(join(work, 'notes.txt'), `${name}:/no/such/dir/x`);
      assert.equal(noFolder.code, 3);
      assert.match(noFolder.stderr, /DEST: no folder \/no\/such\/dir on head.*\n.*mkdir -p/);
      const noNode = await cli(join(work, 'notes.txt'), `${name}:c9:/shared/`);
      assert.equal(noNode.code, 3);
      assert.match(noNode.stderr, /has no node c9/);
      const noUser = await cli(join(work, 'notes.txt'), `${name}:/shared/`, '--user', 'mallory');
      assert.equal(noUser.code, 3);
      assert.match(noUser.stderr, /no user "mallory".*\n.*users: alice, bob/);
      assert.equal((await shOk(state, 'ls /shared')).trim(), 'job\nrenamed.sh');
    });
  });
}
