/**
 * The complete site on the docker provider: the lab template (head + c1..c8) as containers on
 * an engine of this file's own, with accounting, users, shared home, MPI, the REST API and the
 * blob pipeline, across stop and start, and nothing of it left in the engine after down.
 * One cluster for the whole file; the tests run in order and the last one removes it.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { down, start, stop, up } from '../app/clusters.js';
import { parseSpec, resolveSpec } from '../spec/load.js';
import { templateText } from '../spec/templates.js';
import { labelOf, providerFor } from './nodes.js';
import { ClusterPaths } from './paths.js';
import { REST_API, restRequest } from './rest.js';
import { runCli } from '../testing/cli.js';
import type { ClusterState } from './state.js';
import { storageFor } from '../jobs/storage.js';
import { runImageDemo, DEMO_IMAGES, type DemoStorage } from '../jobs/demo.js';
import { isGrayscale } from '../jobs/grayscale.js';
import { LABEL } from '../providers/docker/engine.js';
import { engineLeftovers, useTestEngine } from '../testing/dockerd.js';
import { cleanupHome, sh, shOk, useTempHome, waitForJob } from '../testing/harness.js';
import { Progress } from '../util/progress.js';
import { sleep } from '../util/run.js';

const HELLO_C = fileURLToPath(new URL('../../examples/mpi/hello.c', import.meta.url));
const CLUSTER = 'dsite';
const WORKERS = ['c1', 'c2', 'c3', 'c4', 'c5', 'c6', 'c7', 'c8'];

// The engine and the node image once, before the tests' own timeouts start.
const { skip, engine } = await useTestEngine({ before, after });

describe('the lab site on docker: accounting, users, MPI, REST, blob pipeline, stop/start, down', { skip }, () => {
  let home: string;
  let lab: ClusterState;
  let storage: DemoStorage;
  /** When the demo last wrote blobs (Azurite saves its metadata every 5 s: see the stop/start tests). */
  let demoWroteAt = 0;

  /** Runs a shell command as a cluster user in their home, as `slurmkit exec --user` does: the provider's exec with `user`. */
  const execAs = (user: string, command: string, node = 'head') =>
    providerFor(lab).exec({
      label: labelOf(lab),
      node,
      user,
      cwd: `/home/${user}`,
      env: { HOME: `/home/${user}`, USER: user, LOGNAME: user },
      command: ['bash', '-c', command],
      stdio: 'capture',
    });
  /**
   * Runs a shell command as a cluster user in their home, switching user inside the node (as
   * the local provider's exec does), so that what is checked with it does not hang on how the
   * engine resolves user names: that is the exec test's own business.
   */
  const as = (user: string, command: string, node = 'head', input?: string) =>
    providerFor(lab).exec({
      label: labelOf(lab),
      node,
      cwd: `/home/${user}`,
      command: ['runuser', '-u', user, '--', 'bash', '-c', command],
      stdio: 'capture',
      ...(input === undefined ? {} : { input }),
    });
  const asOk = async (user: string, command: string, node = 'head', input?: string) => {
    const r = await as(user, command, node, input);
    if (r.exitCode !== 0) throw new Error(`${user}@${node}: \`${command}\` exited ${r.exitCode}: ${r.stderr}${r.stdout}`);
    return r.stdout;
  };

  before(async () => {
    home = await useTempHome();
    // lab as it ships, on docker.
    const text = (await templateText('lab')).replace(/^provider: local$/m, 'provider: docker');
    const config = parseSpec(text, 'template lab', { name: CLUSTER });
    assert.equal(config.provider.type, 'docker');
    const started = Date.now();
    lab = await up({ config, specText: text });
    console.log(`# up --provider docker (lab, 9 containers): ${Date.now() - started} ms`);
    storage = await storageFor(CLUSTER);
  });

  after(async () => {
    await cleanupHome(home);
  });

  test('the nodes are containers of the engine, one per node, on one labelled network', async () => {
    const docker = engine().docker;
    const containers = await docker.listContainers({ filters: { label: [`${LABEL.id}=${lab.id}`] } });
    assert.deepEqual(containers.map((c) => c.Labels[LABEL.node]).sort(), ['head', ...WORKERS].sort());
    assert.ok(containers.every((c) => c.State === 'running'));
    const networks = await docker.listNetworks({ filters: { label: [`${LABEL.id}=${lab.id}`] } });
    assert.equal(networks.length, 1);
    assert.equal((await shOk(lab, 'hostname')).trim(), 'head');
    assert.equal((await shOk(lab, 'hostname', 'c5')).trim(), 'c5');
    // Nothing of this machine is bound into a node (slurmkit's program is in the image).
    for (const c of containers) {
      const binds = (await docker.getContainer(c.Id).inspect()).Mounts.filter((m) => m.Type === 'bind');
      assert.deepEqual(binds.map((m) => `${m.Source} on ${m.Destination}`), [], c.Labels[LABEL.node]);
    }
    // The head's secrets are root's files in its memory; a worker has none of them.
    assert.equal(
      await shOk(lab, 'stat -c "%a %U %n" /run/slurmkit/secrets/blob/account /etc/slurm/slurmdbd.conf; stat -f -c %T /run/slurmkit/secrets'),
      '600 root /run/slurmkit/secrets/blob/account\n600 root /etc/slurm/slurmdbd.conf\ntmpfs\n',
    );
    assert.equal(await shOk(lab, 'ls -A /run/slurmkit/secrets /etc/slurm/slurmdbd.conf /etc/mysql/init.sql 2>/dev/null | wc -l', 'c3'), '0\n');
  });

  test('accounting: slurmdbd and MariaDB run in the head, and a job run with srun is in sacct as COMPLETED', { timeout: 60_000 }, async () => {
    assert.match(await shOk(lab, 'pgrep -x slurmdbd; pgrep -x mariadbd'), /^\d+\n\d+\n$/);
    assert.equal((await sh(lab, 'pgrep -x slurmdbd', 'c1')).exitCode, 1, 'no slurmdbd on a worker');
    const out = (await asOk('alice', "srun -N1 bash -c 'echo $SLURM_JOB_ID $(hostname)'")).trim();
    const m = /^(\d+) (c\d)$/.exec(out);
    assert.ok(m, `srun printed its job id and node: ${out}`);
    const [, id, node] = m;
    // slurmctld sends job records to slurmdbd in the background.
    let rows = '';
    const recorded = () => rows.includes(`${id}.0|`) && rows.split('\n').every((l) => l.includes('|COMPLETED|'));
    for (let i = 0; i < 80 && !recorded(); i++) {
      rows = (await asOk('alice', `sacct -n -P -j ${id} -o JobID,User,NodeList,State,ExitCode`)).trim();
      if (!recorded()) await sleep(250);
    }
    // The job and its one step, both COMPLETED on the node that ran it.
    const lines = rows.split('\n');
    assert.equal(lines[0], `${id}|alice|${node}|COMPLETED|0:0`, rows);
    assert.match(lines.find((l) => l.startsWith(`${id}.0|`)) ?? '', new RegExp(`^${id}\\.0\\|[^|]*\\|${node}\\|COMPLETED\\|0:0$`), rows);
    // root sees alice's job; bob does not.
    assert.equal((await shOk(lab, `sacct -n -X -P -j ${id} -o JobID,User`)).trim(), `${id}|alice`);
    assert.equal((await asOk('bob', `sacct -n -X -P -j ${id} -o JobID`)).trim(), '');
  });

  test(
    'users from the spec: exec as a user (slurmkit exec --user) runs as them in their home, on the head and on a worker',
    async () => {
      for (const node of ['head', 'c2']) {
        const r = await execAs('alice', 'id -un; id -u; id -Gn; pwd; echo $HOME', node);
        assert.equal(r.exitCode, 0, `alice@${node}: ${r.stderr}`);
        const out = r.stdout.trim().split('\n');
        assert.deepEqual([out[0], out[1], out[3], out[4]], ['alice', '2001', '/home/alice', '/home/alice'], `on ${node}`);
        assert.match(out[2]!, /\bstudents\b/, `alice is in students on ${node}`);
      }
      const bob = await execAs('bob', 'id -un; id -u; pwd');
      assert.equal(bob.exitCode, 0, bob.stderr);
      assert.deepEqual(bob.stdout.trim().split('\n'), ['bob', '2002', '/home/bob']);
    },
  );

  test('users from the spec: each has their uid, groups and home on every node, and jobs run as their submitter', async () => {
    for (const node of ['head', 'c2']) {
      const out = (await asOk('alice', 'id -un; id -u; id -Gn; pwd; echo $HOME', node)).trim().split('\n');
      assert.deepEqual([out[0], out[1], out[3], out[4]], ['alice', '2001', '/home/alice', '/home/alice'], `on ${node}`);
      assert.match(out[2]!, /\bstudents\b/);
    }
    assert.deepEqual((await asOk('bob', 'id -un; id -u; pwd')).trim().split('\n'), ['bob', '2002', '/home/bob']);
    assert.equal((await asOk('bob', 'srun -N1 id -un')).trim(), 'bob');
  });

  test("users from the spec: a file written on one node is in the shared home on the others, theirs, and 0600 keeps others out", async () => {
    await asOk('alice', 'umask 077; echo alice-secret > ~/secret.txt; echo alice-shared > /shared/alice-0600; echo alice-public > /shared/alice-0644; chmod 600 /shared/alice-0600; chmod 644 /shared/alice-0644', 'c1');
    for (const node of ['head', 'c4', 'c8']) {
      assert.equal((await asOk('alice', 'cat ~/secret.txt /shared/alice-0600', node)).trim(), 'alice-secret\nalice-shared', `on ${node}`);
      assert.equal((await asOk('alice', 'stat -c "%U %G %a" ~/secret.txt /shared/alice-0600', node)).trim(), 'alice alice 600\nalice alice 600', `on ${node}`);
    }
    assert.equal((await asOk('alice', 'stat -c "%U %a" /home/alice')).trim(), 'alice 700');
    // bob reads the 0644 file in /shared, so his refusals below are the modes, not missing files.
    assert.equal((await asOk('bob', 'cat /shared/alice-0644', 'c6')).trim(), 'alice-public');
    for (const path of ['/shared/alice-0600', '/home/alice/secret.txt']) {
      const r = await as('bob', `cat ${path}`, 'c6');
      assert.notEqual(r.exitCode, 0, `bob cannot read ${path}`);
      assert.match(r.stderr, /Permission denied/);
    }
  });

  test('MPI: mpicc builds hello.c in the head; srun --mpi=pmix -N8 runs ranks 0..7 on c1..c8 and their Allreduce sums to 28', { timeout: 120_000 }, async (t) => {
    await asOk('alice', 'mkdir -p ~/mpi && cat > ~/mpi/hello.c', 'head', await readFile(HELLO_C, 'utf8'));
    await asOk('alice', 'mpicc -O2 -Wall -o ~/mpi/hello ~/mpi/hello.c');
    const started = Date.now();
    const out = await asOk('alice', 'srun --mpi=pmix --kill-on-bad-exit=1 -N8 ~/mpi/hello');
    t.diagnostic(`srun --mpi=pmix -N8 hello: ${Date.now() - started} ms`);
    const ranks = [...out.matchAll(/^rank (\d+) of (\d+) on (\S+)$/gm)].map((m) => ({ rank: Number(m[1]), size: Number(m[2]), host: m[3]! }));
    assert.equal(ranks.length, 8, `8 rank lines:\n${out}`);
    assert.deepEqual(ranks.map((r) => r.rank).sort((a, b) => a - b), [0, 1, 2, 3, 4, 5, 6, 7]);
    assert.ok(ranks.every((r) => r.size === 8), 'every rank sees a world of 8');
    assert.deepEqual(ranks.map((r) => r.host).sort(), WORKERS);
    assert.match(out, /^allreduce sum of ranks = 28 \(expected 28\)$/m);
  });

  test('the blob pipeline: the 49-photo demo converts every blob on the workers, no failure, outputs grayscale', { timeout: 180_000 }, async (t) => {
    const started = Date.now();
    const r = await runImageDemo({ cluster: CLUSTER, storage, progress: Progress.silent() });
    demoWroteAt = Date.now();
    t.diagnostic(`demo on docker: ${Date.now() - started} ms, per node ${JSON.stringify(r.batch.perNode)}`);
    assert.equal(r.uploaded, DEMO_IMAGES);
    assert.equal(r.batch.converted, DEMO_IMAGES);
    assert.deepEqual(r.batch.failed, []);
    assert.equal(r.verified, DEMO_IMAGES);
    assert.ok(Object.keys(r.batch.perNode).every((n) => WORKERS.includes(n)), `workers only: ${JSON.stringify(r.batch.perNode)}`);
    assert.ok(Object.keys(r.batch.perNode).length >= 4, `spread: ${JSON.stringify(r.batch.perNode)}`);
    assert.equal(Object.values(r.batch.perNode).reduce((a, b) => a + b, 0), DEMO_IMAGES);
    const outputs = (await storage.list('output')).map((b) => b.name).sort();
    assert.deepEqual(outputs, (await storage.list('input')).map((b) => b.name).sort());
    for (const name of ['photo-001.jpg', 'photo-025.jpg', 'photo-049.jpg']) {
      const out = await storage.getData('output', name);
      const meta = await sharp(out).metadata();
      assert.equal(meta.format, 'jpeg');
      assert.equal(meta.channels, 1, `${name} is single-channel`);
      assert.ok(await isGrayscale(out));
    }
  });

  /** Stops and starts the cluster, checking that a stopped cluster has no container left running. */
  const stopStart = async (t: { diagnostic(m: string): void }) => {
    let started = Date.now();
    await stop(CLUSTER);
    t.diagnostic(`stop: ${Date.now() - started} ms`);
    const docker = engine().docker;
    assert.deepEqual(await docker.listContainers({ all: true, filters: { label: [`${LABEL.id}=${lab.id}`] } }), [], 'no container of a stopped cluster');
    assert.ok((await providerFor(lab).list(labelOf(lab))).every((n) => !n.running));
    started = Date.now();
    await start(CLUSTER);
    t.diagnostic(`start: ${Date.now() - started} ms`);
  };

  test('stop then start keeps /home, /shared and the blobs; every worker is back in Slurm', { timeout: 180_000 }, async (t) => {
    await asOk('alice', 'echo kept-home > ~/kept; echo kept-shared > /shared/alice-kept', 'c3');
    // Blobs Azurite has saved (it saves every 5 s): those written since are the next test's.
    await sleep(Math.max(0, demoWroteAt + 6000 - Date.now()));
    await stopStart(t);
    assert.equal((await asOk('alice', 'cat ~/kept /shared/alice-kept', 'c7')).trim(), 'kept-home\nkept-shared');
    assert.equal((await asOk('alice', 'cat ~/secret.txt', 'c2')).trim(), 'alice-secret', 'files of earlier tests too');
    assert.equal((await asOk('alice', 'stat -c "%U %a" ~/secret.txt', 'c5')).trim(), 'alice 600');
    // The demo's blobs, uploaded long before the stop, come back with the head's Azurite.
    const again = await storageFor(CLUSTER);
    assert.equal((await again.list('output')).length, DEMO_IMAGES);
    const nodes = (await shOk(lab, 'sinfo -h -N -o "%N %t"')).trim().split('\n').sort();
    assert.deepEqual(nodes, WORKERS.map((w) => `${w} idle`));
    // The logs are in a volume of the cluster: what the daemons wrote before the stop is there after it.
    const cli = (...args: string[]) => runCli(args, { home });
    const slurmd = await cli('logs', CLUSTER, '--node', 'c4');
    assert.equal(slurmd.code, 0, slurmd.stderr);
    assert.ok((slurmd.stdout.match(/slurmd version 22\.05/g) ?? []).length >= 2, `c4's slurmd started twice:\n${slurmd.stdout.slice(-500)}`);
    for (const [daemon, says] of [['azurite', /starting azurite/], ['slurmdbd', /slurmdbd version 22\.05/], ['mariadb', /ready for connections/]] as const) {
      const r = await cli('logs', CLUSTER, '--daemon', daemon, '-n', '200');
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, says, daemon);
    }
  });

  /**
   * A stop that kills the head's daemons instead of letting them finish loses what they had not
   * yet written: slurmctld's queue and job id counter, Azurite's latest blobs. The local
   * provider waits for them; these are what a user of the docker provider sees.
   */
  test(
    'stop then start keeps the queue, the job ids and fresh blobs: a held job survives, new ids continue, a blob put just before stop is there',
    {
      timeout: 180_000,
    },
    async (t) => {
      const done = (await asOk('bob', 'sbatch --parsable -o /dev/null --wrap true')).trim();
      await waitForJob(lab, done);
      const held = (await asOk('alice', 'sbatch --parsable -H -o /dev/null --wrap "echo released"')).trim();
      assert.equal((await shOk(lab, `squeue -h -j ${held} -o "%T %r"`)).trim(), 'PENDING JobHeldUser');
      await storage.mk('fresh');
      await storage.putData('fresh', 'note.txt', Buffer.from('put just before stop'), { metadata: {}, contentType: 'text/plain' });
      await stopStart(t);
      const problems: string[] = [];
      // What the user sees: the job is still queued, held, theirs ...
      const q = await sh(lab, `squeue -h -j ${held} -o "%T %r %u"`);
      if (q.stdout.trim() !== 'PENDING JobHeldUser alice') problems.push(`held job ${held} after start: ${q.stdout.trim()}${q.stderr.trim()}`);
      // ... the next job gets a new id (a reused one confuses sacct, and slurmd may revoke it) ...
      const next = (await asOk('bob', 'sbatch --parsable -o /dev/null --wrap true')).trim();
      if (Number(next) <= Number(held)) problems.push(`job id ${next} reused: ${done} and ${held} were submitted before stop`);
      await waitForJob(lab, next, 20_000).catch((err: Error) => problems.push(err.message));
      // ... and the blob put before the stop is there.
      const fresh = await (await storageFor(CLUSTER)).list('fresh').then(
        (b) => b.map((x) => x.name).join(' '),
        (err: Error) => err.message,
      );
      if (fresh !== 'note.txt') problems.push(`blobs of container fresh after start: ${fresh}`);
      // Why it holds: slurmctld logged its last save after the stop's SIGTERM (as it does on the local provider).
      const log = (await shOk(lab, 'cat /var/log/slurm/slurmctld.log')).split('\n');
      const term = log.findLastIndex((l) => l.includes('Terminate signal (SIGINT or SIGTERM) received'));
      if (term < 0) problems.push('slurmctld.log has no SIGTERM');
      else if (!log.slice(term).some((l) => l.includes('Saving all slurm state'))) problems.push(`slurmctld did not save its state after SIGTERM:\n${log.slice(term, term + 3).join('\n')}`);
      assert.deepEqual(problems, []);
    },
  );

  test('down leaves nothing of the cluster: no container, network, volume, bridge or firewall rule, no folder', { timeout: 60_000 }, async () => {
    const id = lab.id;
    // What is looked for is there before down, so its absence after means something.
    const before_ = await engineLeftovers(engine().docker, id);
    assert.ok(before_.some((l) => l.startsWith('container ')), before_.join('\n'));
    assert.ok(before_.includes('network sk-dsite-' + id), before_.join('\n'));
    assert.ok(before_.includes(`link skd${id}`), before_.join('\n'));
    assert.ok(before_.some((l) => l.startsWith('rule ') && l.includes(`skd${id}`)), before_.join('\n'));
    const r = await down(CLUSTER);
    assert.equal(r.existed, true);
    assert.deepEqual(await engineLeftovers(engine().docker, id), []);
    assert.equal(existsSync(ClusterPaths.of(CLUSTER).root), false);
  });
});

describe('the REST API on docker', { skip }, () => {
  let home: string;
  before(async () => {
    home = await useTempHome();
  });
  after(async () => {
    await cleanupHome(home);
  });

  test(
    'a cluster with rest: true comes up; slurmrestd answers through its socket in the head with a token, and refuses one without',
    {
      timeout: 120_000,
    },
    async () => {
      const raw = { name: 'drest', provider: 'docker', nodes: [{ name: 'c', count: 2 }], rest: true };
      const state = await up({ config: resolveSpec(raw, 'test'), specText: JSON.stringify(raw) });
      try {
        assert.equal(state.provider, 'docker');
        const r = await restRequest('drest', 'GET', '/nodes');
        assert.equal(r.status, 200, JSON.stringify(r.body).slice(0, 300));
        assert.deepEqual((r.body as { nodes: { name: string }[] }).nodes.map((n) => n.name).sort(), ['c1', 'c2']);
        // The same path without a token is refused: the socket does not trust whoever reaches it.
        const bare = await shOk(
          state,
          `${process.execPath} -e 'require("http").request({socketPath: "/run/slurmrestd/slurmrestd.sock", path: "${REST_API}/nodes"}, (r) => console.log(r.statusCode)).end()'`,
        );
        assert.equal(bare.trim(), '401');
        // The key that signs tokens is the head's alone: root's, in memory; no worker has it.
        assert.equal(await shOk(state, 'stat -c "%a %U" /run/slurmkit/secrets/jwt/jwt_hs256.key; stat -f -c %T /run/slurmkit/secrets'), '600 root\ntmpfs\n');
        assert.equal((await sh(state, 'test -e /run/slurmkit/secrets/jwt/jwt_hs256.key', 'c1')).exitCode, 1);
      } finally {
        await down('drest', { force: true });
      }
    },
  );
});
