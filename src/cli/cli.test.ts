/**
 * The CLI as a user runs it: `node dist/cli/main.js ...` in a child process, with its own
 * SLURMKIT_HOME. Checks what a user notices: exit codes, messages that name the bad field and
 * say how to fix it, JSON output, and that a refused command created nothing on the machine.
 * The last suite brings up one real cluster (minimal: head + c1, c2). Needs root and the
 * Debian packages the README installs.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile, appendFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { parseSpec } from '../spec/load.js';
import { scanLabeledProcesses } from '../providers/local/procscan.js';
import { runInTerminal } from '../testing/cli.js';

const MAIN = fileURLToPath(new URL('./main.js', import.meta.url));
const execFileP = promisify(execFile);

interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

let home = '';

/** Runs the CLI like a user would; never throws, so a broken CLI fails assertions, not the harness. */
function cli(args: string[], opts: { cwd?: string; timeoutMs?: number; env?: NodeJS.ProcessEnv } = {}): Promise<CliResult> {
  const env: NodeJS.ProcessEnv = { ...process.env, SLURMKIT_HOME: home, ...opts.env };
  // The test runner marks its children; the CLI is not a test file.
  delete env.NODE_TEST_CONTEXT;
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [MAIN, ...args], { cwd: opts.cwd ?? home, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
    child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    const timer = setTimeout(() => {
      stderr += `\n[test] killed after ${opts.timeoutMs ?? 120_000} ms`;
      child.kill('SIGKILL');
    }, opts.timeoutMs ?? 120_000);
    child.on('error', (err) => {
      clearTimeout(timer);
      resolve({ code: null, signal: null, stdout, stderr: `${stderr}\n[test] spawn failed: ${err.message}` });
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

function show(args: string[], r: CliResult): string {
  return `slurmkit ${args.join(' ')} -> exit ${r.code}${r.signal ? ` (${r.signal})` : ''}\n--- stdout ---\n${r.stdout}--- stderr ---\n${r.stderr}`;
}

/** Runs the CLI and checks its exit code, with the whole output in the failure message. */
async function expectExit(args: string[], code: number, opts: { cwd?: string; timeoutMs?: number; env?: NodeJS.ProcessEnv } = {}): Promise<CliResult> {
  const r = await cli(args, opts);
  assert.equal(r.code, code, show(args, r));
  return r;
}

function parseJson<T>(args: string[], r: CliResult): T {
  try {
    return JSON.parse(r.stdout) as T;
  } catch (err) {
    assert.fail(`stdout is not JSON (${(err as Error).message})\n${show(args, r)}`);
  }
}

/** Something on the machine that carries slurmkit's name: a link, a labeled process, a firewall rule. */
interface Trace {
  key: string;
  id: string;
  /** The cluster name from the label, when the resource carries one. */
  cluster?: string;
}

/** Everything named sk* or labeled by slurmkit on this machine, found the way a user would (ip, iptables, /proc). */
async function machineTraces(): Promise<Trace[]> {
  const out: Trace[] = [];
  const { stdout: linksJson } = await execFileP('ip', ['-j', 'link', 'show']);
  for (const l of JSON.parse(linksJson || '[]') as { ifname: string; ifalias?: string }[]) {
    // slurmkit names links sk<6-hex id>br (bridge) and sk<id>n<index> (veth); other sk* links on a
    // shared machine (someone's experiment) are not slurmkit's, unless they carry its label.
    const id = /^sk([0-9a-f]{6})(?:br|n\d+)$/.exec(l.ifname)?.[1];
    const label = /^slurmkit cluster=(\S+) id=(\S+)/.exec(l.ifalias ?? '');
    if (!id && !label) continue;
    out.push({ key: `link ${l.ifname}`, id: label?.[2] ?? id!, ...(label ? { cluster: label[1]! } : {}) });
  }
  for (const p of await scanLabeledProcesses()) {
    out.push({ key: `process ${p.pid} ${p.comm} (cluster=${p.clusterName} id=${p.clusterId})`, id: p.clusterId, cluster: p.clusterName });
  }
  const rules = await execFileP('iptables', ['-w', '-S', 'FORWARD']).catch(() => ({ stdout: '' }));
  for (const line of rules.stdout.split('\n')) {
    // The comment is slurmkit:[<home tag>:]<name>:<id>: the last two fields are the cluster's.
    const comment = /--comment "?(slurmkit:[^\s"]+)"?/.exec(line)?.[1];
    if (!comment || !line.startsWith('-A ')) continue;
    const parts = comment.split(':');
    out.push({ key: `rule ${line}`, id: parts[parts.length - 1]!, cluster: parts[parts.length - 2]! });
  }
  return out;
}

/**
 * Traces that appeared since `before` and are not known to belong to another cluster. Other
 * clusters (other tests, other people) may come and go meanwhile: a veth is attributed to a
 * cluster by its bridge's label, which carries the same id.
 */
function newTraces(before: Trace[], now: Trace[], others: (cluster: string) => boolean): Trace[] {
  const seen = new Set(before.map((t) => t.key));
  const owner = new Map<string, string>();
  for (const t of [...before, ...now]) if (t.cluster) owner.set(t.id, t.cluster);
  return now.filter((t) => {
    if (seen.has(t.key)) return false;
    const cluster = t.cluster ?? owner.get(t.id);
    return cluster === undefined || !others(cluster);
  });
}

async function clusterFolders(): Promise<string[]> {
  return (await readdir(join(home, 'clusters')).catch(() => [] as string[])).sort();
}

interface Snapshot {
  folders: string[];
  traces: Trace[];
}

async function snapshot(): Promise<Snapshot> {
  return { folders: await clusterFolders(), traces: await machineTraces() };
}

/**
 * Nothing was created since `before`: no cluster folder in SLURMKIT_HOME, no new sk* link, no
 * new labeled process or firewall rule for any of `names` (or for a cluster with no label).
 */
async function assertNothingCreated(before: Snapshot, names: string[]): Promise<void> {
  assert.deepEqual(await clusterFolders(), before.folders, `cluster folders in ${home}/clusters`);
  for (const n of names) assert.equal(existsSync(join(home, 'clusters', n)), false, `no folder for cluster ${n}`);
  const fresh = newTraces(before.traces, await machineTraces(), (c) => !names.includes(c));
  assert.deepEqual(fresh.map((t) => t.key), [], 'new links, labeled processes or rules');
}

/** Stderr lines of the form `  - <path>: <problem> — <fix>`. */
function problemLines(stderr: string): string[] {
  return stderr.split('\n').filter((l) => l.startsWith('  - '));
}

function assertHint(r: CliResult, pattern?: RegExp): void {
  const hint = r.stderr.split('\n').find((l) => l.startsWith('hint: '));
  assert.ok(hint, `stderr has a "hint:" line\n${r.stderr}`);
  if (pattern) assert.match(hint, pattern);
}

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

/** Every cluster name this file may have created, for `down --force` in `after`. */
const attempted = new Set<string>();

describe('slurmkit CLI', () => {
  before(async () => {
    // The slurmkit-test- prefix makes testing/harness.ts's gc guard see this home's clusters.
    home = await mkdtemp('/var/tmp/slurmkit-test-cli-');
  });

  after(async () => {
    if (!home) return;
    try {
      const names = new Set([...attempted, ...(await clusterFolders())]);
      for (const name of names) {
        const r = await cli(['down', name, '--force'], { timeoutMs: 120_000 });
        if (r.code !== 0) process.stderr.write(`[cli.test cleanup] ${show(['down', name, '--force'], r)}\n`);
      }
    } finally {
      await rm(home, { recursive: true, force: true });
    }
  });

  describe('refused input changes nothing', () => {
    test('up -f with a spec with several problems lists each with its path and a fix (exit 2)', async () => {
      await writeFile(
        join(home, 'bad.yaml'),
        ['name: clibad', 'nodes:', '  - name: c', '    count: 2', '    cpus: -1', '    memory: 2048', 'partitions:', '  - name: p', '    nodes: [c1, z9]', ''].join('\n'),
      );
      const before_ = await snapshot();
      const r = await expectExit(['up', '-f', 'bad.yaml'], 2);
      assert.match(r.stderr, /^error: bad\.yaml: 3 problems$/m);
      const lines = problemLines(r.stderr);
      assert.equal(lines.length, 3, r.stderr);
      assert.ok(lines.some((l) => /^ {2}- nodes\[0\]\.memory: .*memoryMiB/.test(l)), `unknown key memory, with a suggestion\n${r.stderr}`);
      assert.ok(lines.some((l) => /^ {2}- nodes\[0\]\.cpus: .*-1/.test(l)), `negative cpus\n${r.stderr}`);
      assert.ok(lines.some((l) => /^ {2}- partitions\[0\]\.nodes\[1\]: .*z9/.test(l)), `partition names missing node z9\n${r.stderr}`);
      for (const l of lines) assert.match(l, / — \S/, `each problem says how to fix it: ${l}`);
      assertHint(r);
      assert.equal(r.stdout, '');
      await assertNothingCreated(before_, ['clibad']);
    });

    test('up -f with unknown key memory and a negative count: exit 2, each problem with its path, nothing created', async () => {
      await writeFile(
        join(home, 'bad-count.yaml'),
        ['name: clibad', 'nodes:', '  - name: c', '    count: -2', '    memory: 2048', 'partitions:', '  - name: p', '    nodes: [c1, z9]', ''].join('\n'),
      );
      const before_ = await snapshot();
      const r = await expectExit(['up', '-f', 'bad-count.yaml'], 2);
      const lines = problemLines(r.stderr);
      assert.ok(lines.some((l) => /^ {2}- nodes\[0\]\.memory: unknown key.*memoryMiB/.test(l)), r.stderr);
      assert.ok(lines.some((l) => /^ {2}- nodes\[0\]\.count: .*-2/.test(l)), r.stderr);
      for (const l of lines) assert.match(l, / — \S/, `each problem says how to fix it: ${l}`);
      assertHint(r);
      await assertNothingCreated(before_, ['clibad']);
    });

    test(
      'up -f with a negative count also reports the partition member z9 that no group can make',

      async () => {
        // Its own file: the same problems as the test above, written here so this test stands alone.
        await writeFile(
          join(home, 'bad-count-z9.yaml'),
          ['name: clibad', 'nodes:', '  - name: c', '    count: -2', 'partitions:', '  - name: p', '    nodes: [c1, z9]', ''].join('\n'),
        );
        const r = await expectExit(['up', '-f', 'bad-count-z9.yaml'], 2);
        assert.ok(problemLines(r.stderr).some((l) => /^ {2}- nodes\[0\]\.count: .*-2/.test(l)), r.stderr);
        assert.ok(problemLines(r.stderr).some((l) => /^ {2}- partitions\[0\]\.nodes\[1\]: .*z9/.test(l)), r.stderr);
      },
    );

    test('up -f missing.yaml: exit 3 with a hint, nothing created', async () => {
      const before_ = await snapshot();
      const r = await expectExit(['up', '-f', 'missing.yaml'], 3);
      assert.match(r.stderr, /^error: .*missing\.yaml/m);
      assertHint(r, /slurmkit init/);
      await assertNothingCreated(before_, []);
    });

    test('up with SLURMKIT_HOME under /tmp (which nodes replace): exit 5 naming it with a fix, nothing created', async () => {
      const before_ = await snapshot();
      const hidden = `/tmp/slurmkit-hidden-${process.pid}`;
      const r = await expectExit(['up', '-t', 'minimal'], 5, { env: { SLURMKIT_HOME: hidden } });
      assert.match(r.stderr, /SLURMKIT_HOME: .* is under \/tmp, which every node replaces/);
      assert.match(r.stderr, /fix: set SLURMKIT_HOME to a folder outside \/tmp/);
      assert.equal(existsSync(hidden), false, 'no folder was made for the refused home');
      await assertNothingCreated(before_, ['minimal']);
    });

    test('batch with a bad --timeout or --tasks, or without a converter: exit 2 naming the option, nothing created', async () => {
      const before_ = await snapshot();
      const base = ['batch', 'lab', '--input', 'input', '--output', 'output'];
      let r = await expectExit([...base, '--builtin', 'grayscale', '--timeout', '0'], 2);
      assert.match(r.stderr, /--timeout must be a number of seconds above 0, got "0"/);
      r = await expectExit([...base, '--builtin', 'grayscale', '--tasks', 'two'], 2);
      assert.match(r.stderr, /--tasks must be a whole number/);
      r = await expectExit(base, 2);
      assert.match(r.stderr, /--builtin grayscale or a command after --/);
      await assertNothingCreated(before_, ['lab']);
    });

    test('up -t nosuch: exit 3 listing the templates, nothing created', async () => {
      const before_ = await snapshot();
      const r = await expectExit(['up', '-t', 'nosuch'], 3);
      assert.match(r.stderr, /nosuch/);
      assertHint(r, /lab.*minimal.*partitions/);
      await assertNothingCreated(before_, []);
    });

    test('up --name Bad_Name -t minimal: exit 2 naming the field name, nothing created', async () => {
      const before_ = await snapshot();
      const r = await expectExit(['up', '--name', 'Bad_Name', '-t', 'minimal'], 2);
      const lines = problemLines(r.stderr);
      assert.equal(lines.length, 1, r.stderr);
      assert.match(lines[0]!, /^ {2}- name: .*Bad_Name.* — .*lowercase/);
      assertHint(r);
      await assertNothingCreated(before_, ['Bad_Name', 'bad_name', 'minimal']);
    });

    test('up with both -t and -f, or a bad --timeout: exit 2, nothing created', async () => {
      const before_ = await snapshot();
      // A file that does not exist: were -t and -f not refused together, this would be exit 3 or a cluster.
      const both = await expectExit(['up', '-t', 'minimal', '-f', 'both-nosuch.yaml'], 2);
      assert.match(both.stderr, /^error: give either --template or -f\/--file, not both$/m);
      const timeout = await expectExit(['up', '-t', 'minimal', '--name', 'clitimeout', '--timeout', 'abc'], 2);
      assert.match(timeout.stderr, /--timeout/);
      assertHint(timeout);
      await assertNothingCreated(before_, ['minimal', 'clitimeout']);
    });

    for (const args of [['show', 'nosuch'], ['exec', 'nosuch', '--', 'true'], ['logs', 'nosuch'], ['list-nodes', 'nosuch'], ['stop', 'nosuch']]) {
      test(`${args.join(' ')}: exit 3 naming the cluster, with a hint`, async () => {
        const before_ = await snapshot();
        const r = await expectExit(args, 3);
        assert.match(r.stderr, /no cluster named "nosuch"/);
        assertHint(r, /slurmkit up/);
        assert.equal(r.stdout, '');
        await assertNothingCreated(before_, ['nosuch']);
      });
    }

    test('show nosuch --json: the error as JSON on stdout, exit 3', async () => {
      const r = await expectExit(['show', 'nosuch', '--json'], 3);
      const body = parseJson<{ error: { code: string; message: string; hint: string } }>(['show', 'nosuch', '--json'], r);
      assert.equal(body.error.code, 'NOT_FOUND');
      assert.match(body.error.message, /nosuch/);
      assert.ok(body.error.hint);
    });

    test('down nosuch: exit 0 and says there is nothing to remove (idempotent)', async () => {
      const before_ = await snapshot();
      const r = await expectExit(['down', 'nosuch'], 0);
      assert.match(r.stdout, /nothing to remove/i);
      const json = await expectExit(['down', 'nosuch', '--json'], 0);
      assert.deepEqual(parseJson<{ existed: boolean }>(['down', 'nosuch', '--json'], json).existed, false);
      await assertNothingCreated(before_, ['nosuch']);
    });

    test('an unknown command is a usage error: exit 2 with a suggestion', async () => {
      const r = await expectExit(['lsit'], 2);
      assert.match(r.stderr, /unknown command 'lsit'/);
      assert.match(r.stderr, /Did you mean list\?/);
    });

    test(
      'usage errors of a subcommand (missing argument, unknown option, bad --daemon) exit 2',

      async () => {
        for (const args of [['show'], ['up', '--bogus'], ['logs', 'nosuch', '--daemon', 'bogus']]) {
          const r = await cli(args);
          assert.equal(r.code, 2, show(args, r));
        }
      },
    );
  });

  describe('templates and init', () => {
    test('list-templates --json includes lab, minimal and partitions, each described', async () => {
      const r = await expectExit(['list-templates', '--json'], 0);
      const templates = parseJson<{ name: string; description: string }[]>(['list-templates', '--json'], r);
      const names = templates.map((t) => t.name);
      for (const t of ['course', 'lab', 'minimal', 'partitions']) assert.ok(names.includes(t), `${t} in ${names.join(', ')}`);
      for (const t of templates) assert.ok(t.description.length > 0, `template ${t.name} has a description`);
    });

    test('init -t partitions -o FILE writes a spec up accepts; refuses to overwrite it without --force (exit 4)', async () => {
      const dir = join(home, 'init');
      await mkdir(dir);
      const file = join(dir, 'mycluster.yaml');
      const r = await expectExit(['init', '-t', 'partitions', '-o', 'mycluster.yaml'], 0, { cwd: dir });
      assert.match(r.stderr, /mycluster\.yaml/);
      const text = await readFile(file, 'utf8');
      const config = parseSpec(text, file);
      assert.equal(config.name, 'partitions');
      assert.deepEqual(config.nodes.map((n) => n.name), ['c1', 'c2', 'c3', 'c4', 'c5', 'c6', 'c7', 'c8']);
      assert.deepEqual(config.partitions.map((p) => p.name), ['all', 'even', 'odd']);
      assert.deepEqual(config.partitions.find((p) => p.name === 'even')!.nodes, ['c2', 'c4', 'c6', 'c8']);
      assert.match(text, /^#/m, 'the spec keeps its comments');

      // The user edits the file; a second init must not clobber the edit.
      await appendFile(file, '# my own notes\n');
      const edited = await readFile(file, 'utf8');
      const again = await expectExit(['init', '-t', 'partitions', '-o', 'mycluster.yaml'], 4, { cwd: dir });
      assert.match(again.stderr, /mycluster\.yaml already exists/);
      assertHint(again, /--force/);
      assert.equal(await readFile(file, 'utf8'), edited, 'file unchanged');

      await expectExit(['init', '-t', 'partitions', '-o', 'mycluster.yaml', '--force'], 0, { cwd: dir });
      assert.equal(await readFile(file, 'utf8'), text, '--force writes the template again');
    });

    test('init -t nosuch -o FILE: exit 3 listing the templates, no file written', async () => {
      const file = join(home, 'nosuch.yaml');
      const r = await expectExit(['init', '-t', 'nosuch', '-o', file], 3);
      assertHint(r, /lab.*minimal.*partitions/);
      assert.equal(existsSync(file), false);
    });

    test('init -t minimal without -o prints the spec on stdout', async () => {
      const r = await expectExit(['init', '-t', 'minimal'], 0);
      assert.equal(parseSpec(r.stdout, 'stdout').name, 'minimal');
    });
  });

  describe('doctor', () => {
    test('doctor --json: exit 0 and every check ok on this machine', async () => {
      const r = await expectExit(['doctor', '--json'], 0);
      const checks = parseJson<{ name: string; ok: boolean; detail: string; fix?: string }[]>(['doctor', '--json'], r);
      assert.ok(checks.length > 0, 'some checks ran');
      const failed = checks.filter((c) => !c.ok);
      assert.deepEqual(failed, [], 'checks that failed');
      for (const c of checks) assert.equal(c.ok, true, c.name);
    });
  });

  describe('a running cluster (up -t minimal --name clitest)', () => {
    const NAME = 'clitest';
    let cluster: { name: string; id: string; nodes: { name: string; role: string; address: string }[] };
    let upStderr = '';

    before(async () => {
      attempted.add(NAME);
      const args = ['up', '-t', 'minimal', '--name', NAME, '--json'];
      const r = await expectExit(args, 0, { timeoutMs: 180_000 });
      cluster = parseJson(args, r);
      upStderr = r.stderr;
    });

    test('up --json returns the name, id and nodes; progress goes to stderr', () => {
      assert.equal(cluster.name, NAME);
      assert.match(cluster.id, /^[0-9a-f]{6}$/);
      assert.deepEqual(cluster.nodes.map((n) => n.name), ['head', 'c1', 'c2']);
      assert.deepEqual(cluster.nodes.map((n) => n.role), ['head', 'worker', 'worker']);
      assert.match(upStderr, /wait for nodes idle/, 'phases with timings on stderr, JSON alone on stdout');
    });

    test('list --json shows it running with 3 nodes', async () => {
      const r = await expectExit(['list', '--json'], 0);
      const list = parseJson<{ name: string; id: string; phase: string; nodes: { total: number; running: number; idle: number } }[]>(['list', '--json'], r);
      assert.equal(list.length, 1, r.stdout);
      assert.equal(list[0]!.name, NAME);
      assert.equal(list[0]!.id, cluster.id);
      assert.equal(list[0]!.phase, 'running');
      assert.deepEqual(list[0]!.nodes, { total: 3, running: 3, idle: 2 });
    });

    test('list-nodes --json shows c1 and c2 idle', async () => {
      const r = await expectExit(['list-nodes', NAME, '--json'], 0);
      const nodes = parseJson<{ name: string; role: string; running: boolean; slurmState: string | null; processes: string[] }[]>(['list-nodes', NAME, '--json'], r);
      assert.deepEqual(nodes.map((n) => n.name), ['head', 'c1', 'c2']);
      for (const n of nodes) assert.equal(n.running, true, `${n.name} running`);
      assert.deepEqual(nodes.filter((n) => n.role === 'worker').map((n) => [n.name, n.slurmState]), [['c1', 'idle'], ['c2', 'idle']]);
      assert.ok(nodes[0]!.processes.includes('slurmctld'), `head runs slurmctld: ${nodes[0]!.processes.join(',')}`);
    });

    test('exec runs in the head by default, or in --node', async () => {
      assert.equal((await expectExit(['exec', NAME, '--', 'hostname'], 0)).stdout.trim(), 'head');
      assert.equal((await expectExit(['exec', NAME, '--node', 'c2', '--', 'hostname'], 0)).stdout.trim(), 'c2');
    });

    test("exec passes the command's exit code through", async () => {
      await expectExit(['exec', NAME, '--', 'sh', '-c', 'exit 7'], 7);
    });

    test('exec srun -N2 hostname runs on c1 and c2', async () => {
      const r = await expectExit(['exec', NAME, '--', 'srun', '-N2', 'hostname'], 0, { timeoutMs: 60_000 });
      assert.deepEqual(r.stdout.trim().split('\n').sort(), ['c1', 'c2']);
    });

    test('shell at a terminal: an interactive bash in the node with a terminal of its own, its exit code passed on', async () => {
      const shell = await runInTerminal(['shell', NAME, '--node', 'c2'], 'echo "in-$(hostname) $(tty)"\nexit 7\n', { home });
      assert.equal(shell.code, 7, shell.screen);
      assert.match(shell.screen, new RegExp(`\\[root@${NAME}:c2 [^\\]]*\\]# `), 'the prompt names the cluster and node');
      assert.match(shell.screen, /in-c2 \/dev\/pts\/\d+/, shell.screen);
    });

    test('exec --node nosuch: exit 3 listing the nodes', async () => {
      const r = await expectExit(['exec', NAME, '--node', 'nosuch', '--', 'true'], 3);
      assert.match(r.stderr, /no node "nosuch"/);
      assertHint(r, /head, c1, c2/);
    });

    test('logs shows slurmctld log lines; --node c1 shows its slurmd log', async () => {
      const r = await expectExit(['logs', NAME], 0);
      assert.match(r.stdout, /slurmctld version \S+ started on cluster clitest/);
      assert.match(r.stdout, /^\[\d{4}-\d\d-\d\dT/m, 'timestamped log lines');
      const c1 = await expectExit(['logs', NAME, '--node', 'c1'], 0);
      assert.match(c1.stdout, /slurmd version \S+ started/);
      assert.doesNotMatch(c1.stdout, /slurmctld version/, "c1's log is slurmd's, not the head's");
    });

    test('logs --node c1 --daemon slurmctld: exit 2 with a hint', async () => {
      const r = await expectExit(['logs', NAME, '--node', 'c1', '--daemon', 'slurmctld'], 2);
      assert.match(r.stderr, /slurmctld runs on the head/);
      assertHint(r, /--node head|--daemon slurmd/);
      assert.equal(r.stdout, '');
    });

    test('its bridge, veths and processes are visible with its label (so the checks for leftovers can see them)', async () => {
      const mine = (await machineTraces()).filter((t) => t.id === cluster.id);
      const keys = mine.map((t) => t.key);
      assert.ok(keys.includes(`link sk${cluster.id}br`), keys.join('\n'));
      assert.equal(keys.filter((k) => new RegExp(`^link sk${cluster.id}n\\d+$`).test(k)).length, 3, keys.join('\n'));
      for (const daemon of ['slurmctld', 'slurmd', 'munged']) {
        assert.ok(mine.some((t) => t.key.startsWith('process ') && t.key.includes(` ${daemon} `) && t.cluster === NAME), `${daemon} labeled\n${keys.join('\n')}`);
      }
    });

    test('up with the same name again: exit 4, and the running cluster is left intact', async () => {
      const before_ = await snapshot();
      const r = await expectExit(['up', '-t', 'minimal', '--name', NAME], 4);
      assert.match(r.stderr, /already exists/);
      assertHint(r, /slurmkit down clitest|--name/);
      // Nothing new: no other cluster's resources, no extra links or rules for this one.
      const fresh = newTraces(before_.traces, await machineTraces(), (c) => c !== NAME);
      assert.deepEqual(fresh.filter((t) => t.id !== cluster.id || !t.key.startsWith('process ')).map((t) => t.key), []);
      assert.deepEqual(await clusterFolders(), before_.folders);

      const list = parseJson<{ name: string; id: string; phase: string; nodes: { idle: number } }[]>(['list', '--json'], await expectExit(['list', '--json'], 0));
      assert.deepEqual(list.map((c) => [c.name, c.id, c.phase, c.nodes.idle]), [[NAME, cluster.id, 'running', 2]]);
      const srun = await expectExit(['exec', NAME, '--', 'srun', '-N2', 'hostname'], 0, { timeoutMs: 60_000 });
      assert.deepEqual(srun.stdout.trim().split('\n').sort(), ['c1', 'c2']);
    });

    test('down --json removes it, down again says nothing to remove, list --json is []', async () => {
      const first = await expectExit(['down', NAME, '--json'], 0, { timeoutMs: 120_000 });
      const result = parseJson<{ name: string; existed: boolean; removed: string[] }>(['down', NAME, '--json'], first);
      assert.equal(result.name, NAME);
      assert.equal(result.existed, true);
      assert.ok(result.removed.length > 0, 'down lists what it removed');

      const left = (await machineTraces()).filter((t) => t.id === cluster.id || t.cluster === NAME);
      assert.deepEqual(left.map((t) => t.key), [], 'links, processes and rules of the cluster');
      assert.equal(existsSync(join(home, 'clusters', NAME)), false, 'cluster folder removed');

      const second = await expectExit(['down', NAME], 0);
      assert.match(second.stdout, /nothing to remove/i);
      const list = await expectExit(['list', '--json'], 0);
      assert.deepEqual(parseJson(['list', '--json'], list), []);
    });
  });
});
