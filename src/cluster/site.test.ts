/**
 * A complete site on real daemons: MariaDB + slurmdbd accounting, cluster users, shared
 * home and data folder, across stop and start.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { parseSpec } from '../spec/load.js';
import { templateText } from '../spec/templates.js';
import { start, stop, up } from './lifecycle.js';
import { ClusterPaths } from './paths.js';
import { sitePaths } from './site.js';
import type { ClusterState } from './state.js';
import { cleanupHome, sh, shOk, useTempHome, waitForJob } from '../testing/harness.js';
import { labelOf, providerFor } from './nodes.js';
import { sleep } from '../util/run.js';

describe('a complete site: accounting, users, shared storage', () => {
  let home: string;
  let lab: ClusterState;

  /** Runs a shell command as a cluster user, in their home on the head. */
  const as = async (user: string, command: string, node = 'head') =>
    providerFor(lab).exec({
      label: labelOf(lab),
      node,
      user,
      cwd: `/home/${user}`,
      env: { HOME: `/home/${user}`, USER: user },
      command: ['bash', '-c', command],
      stdio: 'capture',
    });
  const asOk = async (user: string, command: string, node = 'head') => {
    const r = await as(user, command, node);
    if (r.exitCode !== 0) throw new Error(`${user}: \`${command}\` exited ${r.exitCode}: ${r.stderr}${r.stdout}`);
    return r.stdout;
  };

  before(async () => {
    home = await useTempHome();
    const text = await templateText('lab');
    lab = await up({ config: parseSpec(text, 'template lab', { name: 'tsite' }), specText: text });
  });

  after(async () => {
    await cleanupHome(home);
  });

  test('sacct shows a finished job with its nodes, elapsed time and exit code', async () => {
    const id = (await asOk('alice', 'sbatch --parsable -N2 -o job.out --wrap "srun hostname; exit 3"')).trim();
    await waitForJob(lab, id);
    let row = '';
    for (let i = 0; i < 40 && !row.includes('3:0'); i++) {
      row = (await asOk('alice', `sacct -n -X -P -j ${id} -o JobID,User,NodeList,Elapsed,State,ExitCode`)).trim();
      await sleep(250);
    }
    const [jobId, user, nodes, elapsed, state, exit] = row.split('|');
    assert.equal(jobId, id);
    assert.equal(user, 'alice');
    assert.match(nodes!, /^c\[?\d/);
    assert.match(elapsed!, /^\d\d:\d\d:\d\d$/);
    assert.equal(state, 'FAILED');
    assert.equal(exit, '3:0');
  });

  test("jobs run as their submitter; users see, read and cancel only their own jobs", async () => {
    assert.equal((await asOk('alice', 'srun -N1 id -u')).trim(), '2001');
    // A file of alice's own, so bob's refused read below is her home's mode, not a missing file.
    await asOk('alice', 'echo alice-private > ~/private.txt');
    assert.equal((await asOk('alice', 'cat /home/alice/private.txt')).trim(), 'alice-private');
    const held = (await asOk('alice', 'sbatch --parsable -H -o secret.out --wrap "echo alice-secret"')).trim();
    try {
      // bob cannot see alice's job, nor cancel it, nor read her files.
      assert.equal((await asOk('bob', 'squeue -h -o %i')).trim(), '');
      const cancel = await as('bob', `scancel ${held}`);
      assert.notEqual(cancel.exitCode, 0, 'bob cannot cancel alice\'s job');
      assert.match(cancel.stderr, /Access\/permission denied/);
      assert.match((await shOk(lab, `squeue -h -j ${held} -o %T`)).trim(), /PENDING/);
      const read = await as('bob', 'cat /home/alice/private.txt');
      assert.notEqual(read.exitCode, 0);
      assert.match(read.stderr, /Permission denied/);
      assert.equal((await asOk('alice', 'squeue -h -o %i')).trim(), held);
    } finally {
      await asOk('alice', `scancel ${held}`);
    }
  });

  test('home and /shared are the same on every node, /tmp is not', async () => {
    await asOk('alice', 'echo from-head > ~/seen-everywhere; echo data > /shared/alice-data; echo head-only > /tmp/alice-tmp');
    // Single quotes: every $(...) runs on the worker (in double quotes the head would expand them).
    const out = await asOk('alice', "srun -N8 bash -c 'echo $(hostname) $(cat ~/seen-everywhere) $(cat /shared/alice-data) $(cat /tmp/alice-tmp 2>/dev/null || echo no-tmp)'");
    const lines = out.trim().split('\n');
    assert.equal(lines.length, 8);
    for (const l of lines) assert.match(l, /^c\d from-head data no-tmp$/);
    assert.equal((await asOk('alice', 'cat /tmp/alice-tmp')).trim(), 'head-only', 'the head keeps its own /tmp');
    const homeDir = join(sitePaths(ClusterPaths.of('tsite')).home, 'alice');
    const st = await stat(homeDir);
    assert.equal(st.uid, 2001);
    assert.equal(st.mode & 0o777, 0o700);
  });

  test('stop and start keep accounting history, homes and shared data', async () => {
    // Its own job and files: what must survive is made here, not by the tests before.
    const job = (await asOk('alice', 'sbatch --parsable -o /dev/null --wrap true')).trim();
    await waitForJob(lab, job);
    await asOk('alice', 'echo kept-home > ~/kept-across-restart; echo kept-shared > /shared/alice-kept');
    // slurmctld sends job records to slurmdbd in the background: wait until the job is in.
    let before_: string[] = [];
    for (let i = 0; i < 40 && !before_.includes(job); i++) {
      before_ = (await shOk(lab, 'sacct -a -n -X -P -o JobID')).trim().split('\n');
      if (!before_.includes(job)) await sleep(250);
    }
    assert.ok(before_.includes(job), `sacct knows job ${job}: ${before_.join(' ')}`);
    await stop('tsite');
    await start('tsite');
    let after_: string[] = [];
    for (let i = 0; i < 20; i++) {
      after_ = (await sh(lab, 'sacct -a -n -X -P -o JobID')).stdout.trim().split('\n');
      if (before_.every((j) => after_.includes(j))) break;
      await sleep(250);
    }
    for (const j of before_) assert.ok(after_.includes(j), `job ${j} still in sacct`);
    assert.equal((await asOk('alice', 'cat ~/kept-across-restart /shared/alice-kept')).trim(), 'kept-home\nkept-shared');
    const id = (await asOk('bob', 'sbatch --parsable -o /dev/null --wrap true')).trim();
    assert.ok(Number(id) > Number(job), `job ids continue: ${id} after ${job}`);
    // The associations loaded again at start are the same ones, once each.
    const assocs = (await shOk(lab, 'sacctmgr -n -P list assoc format=cluster,account,user')).trim().split('\n').sort();
    assert.deepEqual(assocs, ['tsite|root|', 'tsite|root|root', 'tsite|users|', 'tsite|users|alice', 'tsite|users|bob']);
  });

  test('the database password is owner-only and on no command line', async () => {
    const pass = (await stat(join(sitePaths(ClusterPaths.of('tsite')).dbSecrets, 'password'))).mode & 0o777;
    assert.equal(pass, 0o600);
    const conf = (await stat(sitePaths(ClusterPaths.of('tsite')).slurmdbdConfSecret)).mode & 0o777;
    assert.equal(conf, 0o600);
    const { readFile } = await import('node:fs/promises');
    const secret = (await readFile(join(sitePaths(ClusterPaths.of('tsite')).dbSecrets, 'password'), 'utf8')).trim();
    assert.ok(secret.length >= 16, 'a real password to look for');
    const cmdlines = await shOk(lab, 'cat /proc/[0-9]*/cmdline 2>/dev/null | tr "\\0" " "');
    // The scan sees the daemons that use the password, so its absence means something.
    assert.match(cmdlines, /slurmdbd/);
    assert.match(cmdlines, /mariadbd|mysqld/);
    assert.ok(!cmdlines.includes(secret));
    // slurmdbd.conf is there for root, so alice's refusal is its mode, not a missing file.
    assert.match(await shOk(lab, 'cat /etc/slurm/slurmdbd.conf'), /StoragePass=/);
    const read = await as('alice', 'cat /etc/slurm/slurmdbd.conf');
    assert.notEqual(read.exitCode, 0, 'users cannot read slurmdbd.conf');
    assert.match(read.stderr, /Permission denied/);
  });
});
