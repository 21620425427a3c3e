/**
 * The `course` template on a real cluster, for each provider's test file: a login node outside
 * Slurm's compute nodes with a Jupyter server per student, and Python functions shipped from a
 * notebook (executed with Debian's `jupyter nbconvert --execute`) into the exclusive sandboxed
 * partition.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { parseSpec } from '../spec/load.js';
import { templateText } from '../spec/templates.js';
import { jupyterAccess } from '../cluster/login.js';
import { start, stop } from '../cluster/lifecycle.js';
import { PYTHON_MODULES } from '../cluster/layout.js';
import { ClusterPaths, HEAD_SECRETS } from '../cluster/paths.js';
import { requireState, type ClusterState } from '../cluster/state.js';
import { sh, shOk } from './harness.js';
import { withCluster } from './cluster-fixture.js';
import { runCli } from './cli.js';
import { overlaps, runRecorded } from './exclusive-runs.js';

/** A notebook of code cells, in nbformat 4. */
function notebook(cells: string[]): string {
  return JSON.stringify({
    nbformat: 4,
    nbformat_minor: 5,
    metadata: { kernelspec: { name: 'python3', display_name: 'Python 3', language: 'python' } },
    cells: cells.map((source, i) => ({ cell_type: 'code', id: `c${i}`, metadata: {}, execution_count: null, outputs: [], source })),
  });
}

/** What the executed notebook printed, cell by cell. */
function printed(executed: string): string[] {
  const nb = JSON.parse(executed) as { cells: { outputs: { output_type: string; text?: string | string[]; ename?: string; evalue?: string }[] }[] };
  return nb.cells.map((c) =>
    c.outputs.map((o) => (o.output_type === 'stream' ? [o.text ?? ''].flat().join('') : o.output_type === 'error' ? `ERROR ${o.ename}: ${o.evalue}` : '')).join(''),
  );
}

/**
 * The suite on `provider`: its spec's `provider:` value is `providerYaml()` (asked for once the
 * test file's before hooks have run: a test swarm's endpoints), else the provider's name; `skip`
 * skips it (a provider this machine lacks).
 */
export function courseSuite(provider: 'local' | 'docker' | 'swarm', opts: { skip?: string | false; providerYaml?: () => string } = {}): void {
  const skip = opts.skip ?? false;
  const NAME = `${provider[0]}course`;
  /** Nodes that share this machine use the head's munged; others run their own, with the key. */
  const ownMunge = provider !== 'local';
  /** This machine reaches the login node's address (not a swarm's, whose ports are published on its host). */
  const reachesNodes = provider !== 'swarm';
  describe(`a course cluster on provider ${provider}: login node, Jupyter, functions from a notebook`, { skip }, () => {
    let home: string;
    let state: ClusterState;
    withCluster(
      async () => {
        const specText = (await templateText('course', { name: NAME })).replace(/^provider: local$/m, `provider:\n  ${(opts.providerYaml?.() ?? provider).replace(/\n/g, '\n  ')}`);
        return { config: parseSpec(specText, 'course'), specText };
      },
      (s, h) => ([state, home] = [s, h]),
    );

    test('the login node is no compute node; students submit from it as themselves and share /home with the workers', async () => {
      assert.deepEqual((await shOk(state, 'sinfo -h -N -o %N | sort -u')).trim().split('\n'), ['c1', 'c2', 'c3', 'c4']);
      const daemons = (await sh(state, 'pgrep -x "slurmd|slurmctld|slurmdbd|mariadbd|slurmrestd" | wc -l', 'login')).stdout.trim();
      assert.equal(daemons, '0', 'no Slurm daemon or database runs on the login node');
      if (ownMunge) {
        // Its own munged, with the cluster's key (root's alone), and no other secret.
        assert.equal((await shOk(state, 'pgrep -x munged | wc -l; stat -c "%a %U" /etc/munge/munge.key; ls -A /etc/munge', 'login')).trim(), '1\n400 root\nmunge.key');
        assert.equal((await sh(state, `ls /etc/slurm/slurmdbd.conf ${HEAD_SECRETS} /etc/mysql/init.sql 2>/dev/null | wc -l`, 'login')).stdout.trim(), '0', 'no database password or JWT key');
      } else {
        assert.equal((await sh(state, 'pgrep -x munged | wc -l; ls -A /etc/munge | wc -l', 'login')).stdout.trim(), '0\n0', "no munged and no munge key: the head's munged serves it");
      }
      assert.equal((await shOk(state, 'id alice', 'login')).trim(), (await shOk(state, 'id alice')).trim(), "alice's uid and groups as on the head");
      await shOk(state, 'cd /home/alice && runuser -u alice -- sh -c "echo written on login > /home/alice/note"', 'login');
      await shOk(state, "cd /home/alice && runuser -u alice -- sbatch --wait -o /home/alice/who.out --wrap 'id -un; hostname; cat /home/alice/note' >/dev/null", 'login');
      const [user, node, note] = (await shOk(state, 'cat /home/alice/who.out', 'login')).trim().split('\n');
      assert.deepEqual([user, node?.replace(/\d+$/, ''), note], ['alice', 'c', 'written on login']);
    });

    test('20 jobs of the two students in the exclusive sandboxed partition: every one ran, once, and never two on a node at once', async () => {
      const runs = await runRecorded(state, 'exam', 'course', 10, 0.5);
      assert.deepEqual([...new Set(runs.map((r) => r.user))].sort(), ['alice', 'bob']);
      assert.ok(new Set(runs.map((r) => r.node)).size >= 3, `jobs spread over the nodes: ${[...new Set(runs.map((r) => r.node))]}`);
      assert.deepEqual(overlaps(runs), [], 'no two jobs overlapped on a node');
    });

    test("each student's Jupyter answers on the login node's address with that student's token only; tokens are in no log and on no command line", async () => {
      const alice = await jupyterAccess(state, 'alice');
      const bob = await jupyterAccess(state, 'bob');
      // Where this machine reaches it: the login node's address, or the port published on its host.
      if (reachesNodes) assert.equal(alice.address, state.nodes.find((n) => n.role === 'login')!.address);
      else assert.notEqual(alice.address, state.nodes.find((n) => n.role === 'login')!.address);
      assert.notEqual(alice.port, bob.port);
      const token = (a: typeof alice) => new URL(a.url).searchParams.get('token')!;
      const api = (a: typeof alice, t?: string) => `http://${a.address}:${a.port}/api/contents${t ? `?token=${t}` : ''}`;
      assert.equal((await fetch(api(alice, token(alice)))).status, 200);
      assert.equal((await fetch(api(alice))).status, 403, 'no token');
      assert.equal((await fetch(api(alice, token(bob)))).status, 403, "bob's token on alice's server");
      assert.equal((await fetch(api(alice, `${token(alice).slice(0, -1)}${token(alice).endsWith('0') ? '1' : '0'}`))).status, 403, 'a tampered token');
      // The server is alice's: a file saved through it is hers, in her home.
      const put = await fetch(`http://${alice.address}:${alice.port}/api/contents/hello?token=${token(alice)}`, {
        method: 'PUT',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ type: 'file', format: 'text', content: 'hi from jupyter\n' }),
      });
      assert.equal(put.status, 201, await put.text());
      assert.equal((await shOk(state, 'stat -c %U /home/alice/hello', 'login')).trim(), 'alice');
      // The cluster's logs, as the nodes keep them (Jupyter's, on the login node, among them).
      assert.match(await shOk(state, 'ls /var/log/slurm', 'login'), /jupyter-alice\.log/);
      const leaked = await sh(state, `grep -rl -e ${token(alice)} -e ${token(bob)} /var/log/slurm`, 'login');
      assert.equal(leaked.stdout.trim(), '', 'a token in a log');
      const cmdlines = await shOk(state, 'cat /proc/[0-9]*/cmdline 2>/dev/null | tr "\\0" " "', 'login');
      assert.match(cmdlines, /jupyter-notebook/);
      assert.ok(!cmdlines.includes(token(alice)), 'a token on a command line');
      const tokens = ClusterPaths.of(NAME).jupyterTokens;
      assert.equal((await stat(join(tokens, 'alice'))).mode & 0o777, 0o600);
      // The CLI: the owner gets the URL; a user the cluster does not have is named in the error.
      const cli = await runCli(['jupyter', NAME, '--user', 'alice'], { home });
      assert.equal(cli.code, 0, cli.stderr);
      assert.equal(cli.stdout.trim(), alice.url);
      const wrong = await runCli(['jupyter', NAME, '--user', 'carol'], { home });
      assert.notEqual(wrong.code, 0);
      assert.match(wrong.stderr, new RegExp(`--user carol: not a user of cluster ${NAME}`));
      assert.match(wrong.stderr, /alice, bob/);
      const show = await runCli(['show', NAME], { home });
      assert.match(show.stdout, new RegExp(`login: +login 10\\.\\S+, Jupyter for alice on port 8888, bob on port 8889; each URL with its token: slurmkit jupyter ${NAME} --user USER`));
    });

    test('stop and start bring the login node and its Jupyter servers back, with the same tokens; start mends a server that died', async () => {
      const before = await jupyterAccess(state, 'alice');
      // (Nothing is sent to the login node's address while it is stopped: the address is not the cluster's then.)
      await stop(NAME);
      assert.equal((await requireState(NAME)).phase, 'stopped');
      state = await start(NAME);
      const answer = async (a: typeof before) => (await fetch(a.url.replace('/?token=', '/api/status?token='))).status;
      const after = await jupyterAccess(state, 'alice');
      assert.equal(new URL(after.url).searchParams.get('token'), new URL(before.url).searchParams.get('token'), 'the same token');
      // A swarm publishes the port anew, wherever the engine chooses: `slurmkit jupyter` gives the URL.
      if (reachesNodes) assert.equal(after.url, before.url, 'the same URL');
      assert.equal(await answer(after), 200, 'the URL after the start answers');
      // bob's server dies; start (on a running cluster) starts it again and leaves alice's alone.
      const alicePid = (await shOk(state, 'pgrep -u alice -f jupyter-notebook', 'login')).trim();
      await shOk(state, 'pkill -u bob -f jupyter-notebook; while pgrep -u bob -f jupyter-notebook >/dev/null; do sleep 0.05; done', 'login');
      state = await start(NAME);
      assert.equal(await answer(await jupyterAccess(state, 'bob')), 200);
      assert.equal((await shOk(state, 'pgrep -u alice -f jupyter-notebook', 'login')).trim(), alicePid, "alice's server was left as it was");
    });

    test('a notebook run with nbconvert on the login node ships functions into the sandboxed partition as its student; a remote exception comes back with its traceback', async () => {
      const nb = notebook([
        'from slurmkit_run import run, RemoteError',
        [
          'def measure(n):',
          '    import os, socket',
          '    try:',
          "        socket.create_connection(('head', 6817), timeout=1)",
          "        net = 'reached slurmctld'",
          '    except OSError:',
          "        net = 'no network'",
          '    return sum(i * i for i in range(n)), socket.gethostname(), os.getuid(), net',
          'value, host, uid, net = run(measure, 10)',
          "print(value, host.rstrip('0123456789'), uid, net)",
        ].join('\n'),
        [
          'def boom(x):',
          "    raise ValueError(f'bad input {x}')",
          'try:',
          '    run(boom, 7)',
          'except ValueError as e:',
          "    print('caught', e, '|', type(e.__cause__).__name__, '|', 'in boom' in str(e.__cause__))",
        ].join('\n'),
      ]);
      await shOk(state, `runuser -u alice -- tee /home/alice/experiment.ipynb >/dev/null <<'EOF'\n${nb}\nEOF`, 'login');
      // As the student's Jupyter server runs it: her home, slurmkit's module on the path.
      const r = await sh(
        state,
        `cd /home/alice && PYTHONPATH=${PYTHON_MODULES} timeout 240 runuser -u alice -- jupyter nbconvert --to notebook --execute --output executed.ipynb experiment.ipynb 2>&1`,
        'login',
      );
      assert.equal(r.exitCode, 0, r.stdout);
      const out = printed(await shOk(state, 'cat /home/alice/executed.ipynb', 'login'));
      const uid = (await shOk(state, 'id -u alice', 'login')).trim();
      assert.equal(out[1]!.trim(), `285 c ${uid} no network`, out.join('\n---\n'));
      assert.equal(out[2]!.trim(), 'caught bad input 7 | RemoteError | True', out.join('\n---\n'));
      // Both calls are alice's jobs in accounting, in the sandboxed partition.
      let rows: string[] = [];
      for (let i = 0; i < 50 && rows.length < 2; i++) {
        rows = (await shOk(state, 'sacct -n -X -a -P -o JobName,User,Partition,State | grep "^call-" || true')).trim().split('\n').filter(Boolean);
        if (rows.length < 2) await new Promise((res) => setTimeout(res, 200));
      }
      assert.equal(rows.length, 2, rows.join('\n'));
      for (const row of rows) assert.match(row, /^call-[0-9a-f]{8}\|alice\|course\|(COMPLETED|COMPLETING|FAILED|RUNNING)$/);
    });

    test('a worker added while the cluster runs takes jobs sent from the login node, sandboxed', async () => {
      const { addNodes } = await import('../cluster/scale.js');
      const added = await addNodes(NAME, { group: 'c', count: 1 });
      assert.deepEqual(added.nodes, ['c5']);
      state = added.state;
      // The login node's clients know it (its slurm.conf and /etc/hosts were rewritten), and its jobs are sandboxed.
      const out = await shOk(state, "cd /home/bob && runuser -u bob -- srun -w c5 bash -c 'hostname; touch /etc/x 2>/dev/null || echo read-only'", 'login');
      assert.deepEqual(out.trim().split('\n'), ['c5', 'read-only']);
      assert.match(await shOk(state, 'grep -c "c5" /etc/slurm/slurm.conf /etc/hosts', 'login'), /slurm\.conf:[1-9][\s\S]*hosts:1/);
    });
  });
}
