/**
 * The machine contract of types.ts, checked the same way for every NodeProvider: one suite,
 * registered by each implementation's own test file. No Slurm: nodes boot plain shell
 * commands. Every test makes its own cluster (a fresh label, a /24 from 10.215.0.0/16 that no
 * host route uses, its own nodes) and removes it by label when it ends, pass or fail.
 *
 * Nodes need bash, coreutils and iproute2; ping is used when the node and the host have it.
 */
import { parseCidr } from '../util/ipv4.js';
import { after, before, describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { createInterface } from 'node:readline';
import { join } from 'node:path';
import type { ClusterLabel, ExecResult, LeftoverReport, Mount, NetworkRequest, NodeProvider, NodeSpec, NodeStatus } from './types.js';
import { run, sleep, which } from '../util/run.js';

export interface ConformanceOptions {
  /**
   * Everything the implementation holds for this cluster right now, found without asking
   * the provider (e.g. by scanning /proc, links, firewall rules): one string per resource.
   * Must be empty once removeByLabel has run; compared before and after to prove that a
   * call freed what it made.
   */
  leftovers: (label: ClusterLabel) => Promise<string[]>;
  /** Kinds of resource removeByLabel must report for a cluster with a network and nodes, e.g. /bridge/. */
  reportedResources?: () => Promise<RegExp[]>;
  /**
   * Checks the implementation is known to fail, by test title, each with the reason (a bug
   * report): they run as todo, so they keep reporting without failing the run.
   */
  knownGaps?: Record<string, string>;
  /** Host folder for work dirs, console logs and bind sources; not under /tmp, which nodes replace. */
  scratchParent?: string;
  /** createNodes timeout for nodes that are meant to boot. */
  bootTimeoutMs?: number;
  /** Checks of one group (network, createNodes, ...) run at once: each has its own cluster. Default 4. */
  concurrency?: number;
  /** Machines of a provider of several: the suite's nodes are placed on them in turn (NodeSpec.host). */
  hosts?: string[];
  /**
   * Whether this machine reaches nodes at their addresses from the gateway (default true). Not
   * on an overlay network of other hosts: there the checks reach a node from another node.
   */
  hostReachesNodes?: boolean;
}

const hex = (bytes: number): string => randomBytes(bytes).toString('hex');

/** A fresh label: id of 6 and home of 8 hex characters, as slurmkit makes them. */
export function freshLabel(name: string, home = hex(4)): ClusterLabel {
  return { name, id: hex(3), home };
}

function cidrOverlaps(a: string, b: string): boolean {
  const range = (cidr: string): [number, number] => {
    const { start, size } = parseCidr(cidr);
    return [start, start + size];
  };
  const [s1, e1] = range(a);
  const [s2, e2] = range(b);
  return s1 < e2 && s2 < e1;
}

const subnetsInUse = new Set<number>();

/** A /24 of 10.215.0.0/16 that no route on this host covers (slurmkit itself allocates from 10.213.0.0/16). */
export async function freeSubnet(): Promise<{ third: number; subnet: string }> {
  const routes = (JSON.parse((await run('ip', ['-j', '-4', 'route', 'show', 'table', 'all'])).stdout || '[]') as { dst?: string }[])
    .map((r) => r.dst)
    .filter((d): d is string => d !== undefined && d !== 'default');
  for (let tries = 0; tries < 512; tries++) {
    const third = randomBytes(1)[0]!;
    const subnet = `10.215.${third}.0/24`;
    if (subnetsInUse.has(third) || routes.some((r) => cidrOverlaps(subnet, r))) continue;
    subnetsInUse.add(third);
    return { third, subnet };
  }
  throw new Error('no free /24 left in 10.215.0.0/16');
}

/**
 * One test's cluster: label, network, folders, node specs, and the provider calls a test
 * makes on it. `track` registers its removal with the test, so it goes even if the test fails.
 */
export class ScratchCluster {
  readonly network: NetworkRequest;
  private readonly third: number;

  private constructor(
    readonly provider: NodeProvider,
    readonly label: ClusterLabel,
    subnet: { third: number; subnet: string },
    /** Host folder of this cluster: work dir, console logs, bind sources. */
    readonly dir: string,
    private readonly bootTimeoutMs: number,
    private readonly hosts: string[] = [],
  ) {
    this.third = subnet.third;
    this.network = { label, subnet: subnet.subnet, gateway: `10.215.${subnet.third}.1`, prefixLength: 24 };
  }

  static async make(
    t: TestContext,
    provider: NodeProvider,
    parent: string,
    opts: { name?: string; home?: string; bootTimeoutMs?: number; hosts?: string[] } = {},
  ): Promise<ScratchCluster> {
    const label = freshLabel(opts.name ?? 'conformance', opts.home);
    const subnet = await freeSubnet();
    const dir = join(parent, label.id);
    await mkdir(dir, { recursive: true });
    const cluster = new ScratchCluster(provider, label, subnet, dir, opts.bootTimeoutMs ?? 15_000, opts.hosts);
    t.after(async () => {
      const report = await cluster.remove();
      subnetsInUse.delete(subnet.third);
      if (report.failed.length > 0) throw new Error(`cleanup of ${label.id} left: ${JSON.stringify(report.failed)}`);
    });
    return cluster;
  }

  get workDir(): string {
    return join(this.dir, 'work');
  }

  address(index: number): string {
    return `10.215.${this.third}.${10 + index}`;
  }

  consoleLog(hostname: string): string {
    return join(this.dir, `console-${hostname}.log`);
  }

  /** A node with a private /tmp (tmpfs) followed by `mounts`. */
  node(hostname: string, index: number, opts: { boot?: string; mounts?: Mount[] } = {}): NodeSpec {
    return {
      hostname,
      ...(this.hosts.length > 0 ? { host: this.hosts[index % this.hosts.length]! } : {}),
      index,
      address: this.address(index),
      mounts: [{ type: 'tmpfs', target: '/tmp', mode: '1777' }, ...(opts.mounts ?? [])],
      boot: opts.boot ?? 'true',
      consoleLog: this.consoleLog(hostname),
    };
  }

  ensureNetwork(): Promise<void> {
    return this.provider.ensureNetwork(this.network);
  }

  create(nodes: NodeSpec[], timeoutMs = this.bootTimeoutMs): Promise<void> {
    return this.provider.createNodes({ label: this.label, network: this.network, nodes, workDir: this.workDir, timeoutMs });
  }

  /** ensureNetwork, then createNodes. */
  async up(nodes: NodeSpec[]): Promise<void> {
    await this.ensureNetwork();
    await this.create(nodes);
  }

  sh(node: string, script: string, opts: { input?: string; env?: Record<string, string>; cwd?: string; user?: string } = {}): Promise<ExecResult> {
    return this.provider.exec({ label: this.label, node, command: ['bash', '-c', script], stdio: 'capture', ...opts });
  }

  /** Like sh, but fails with the command's output when it exits non-zero; returns stdout. */
  async shOk(node: string, script: string): Promise<string> {
    const r = await this.sh(node, script);
    if (r.exitCode !== 0) throw new Error(`\`${script}\` on ${node} exited ${r.exitCode}:\n${r.stderr}${r.stdout}`);
    return r.stdout;
  }

  async list(): Promise<NodeStatus[]> {
    return (await this.provider.list(this.label)).sort((a, b) => a.hostname.localeCompare(b.hostname));
  }

  remove(): Promise<LeftoverReport> {
    return this.provider.removeByLabel({ id: this.label.id });
  }
}

/** Polls until `probe` returns true; on timeout fails with what it saw last. */
async function eventually(what: string, probe: () => Promise<boolean>, describeLast: () => string, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await probe()) return;
    if (Date.now() > deadline) assert.fail(`${what} not reached within ${timeoutMs} ms (last seen: ${describeLast()})`);
    await sleep(25);
  }
}

/** Host PIDs whose program name is `comm`, read from /proc directly (labeled or not). */
function hostPidsNamed(comm: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/comm`, 'utf8').trim() !== comm) continue;
      const stat = readFileSync(`/proc/${entry}/stat`, 'latin1');
      if (!/^[ZX]$/.test(stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3))) pids.push(Number(entry));
    } catch {
      /* gone */
    }
  }
  return pids;
}

/** A uniquely named copy of sleep in the node's private /tmp (list() leaves out sleep, bash, unshare). */
function napper(): { name: string; start: string } {
  const name = `nap${hex(3)}`;
  return { name, start: `cp /bin/sleep /tmp/${name} && (/tmp/${name} 1000 >/dev/null 2>&1 &)` };
}

/** TCP to a closed port: "refused" proves a packet went there and an answer came back. */
function hostConnect(host: string, localAddress: string): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect({ host, port: 9, localAddress, timeout: 3_000 });
    socket.on('connect', () => {
      socket.destroy();
      resolve('connected');
    });
    socket.on('timeout', () => {
      socket.destroy();
      resolve('timeout');
    });
    socket.on('error', (err: NodeJS.ErrnoException) => resolve(err.code === 'ECONNREFUSED' ? 'refused' : (err.code ?? err.message)));
  });
}

const isNotFound = (err: unknown): boolean => (err as { code?: unknown }).code === 'NOT_FOUND';

/**
 * Registers the conformance suite for one implementation. `make` is called for every cluster
 * a test makes, so a provider keeping state in memory cannot pass by remembering instead of
 * finding (list and removeByLabel work from what runs).
 */
export function providerConformance(name: string, make: () => NodeProvider, opts: ConformanceOptions): void {
  const gaps = new Map(Object.entries(opts.knownGaps ?? {}));
  const titles = new Set<string>();
  let parent = '';
  const bootTimeoutMs = opts.bootTimeoutMs ?? 15_000;
  const group = { concurrency: opts.concurrency ?? 4 };
  // Nodes that share this host's filesystem, PIDs and gateway enable the checks made from the
  // host (a node's /tmp is not the host's, host PIDs, SIGKILL of a node's init): the provider says.
  const sharesHost = make().capabilities.sharesHost;
  // Volumes that are one folder wherever nodes run (not a swarm's, which are each host's own).
  const sharedVolumes = make().capabilities.sharedVolumes;

  /** A check; runs as todo when the implementation declares it a known gap. */
  const check = (title: string, fn: (t: TestContext) => Promise<void>, when = true): void => {
    titles.add(title);
    const gap = gaps.get(title);
    const options = !when ? { skip: 'needs nodes that share this host (sharesHost)' } : gap ? { todo: gap } : {};
    test(title, options, fn);
  };
  const cluster = (t: TestContext, o: { home?: string; name?: string } = {}): Promise<ScratchCluster> =>
    ScratchCluster.make(t, make(), parent, { bootTimeoutMs, ...(opts.hosts ? { hosts: opts.hosts } : {}), ...o });
  /**
   * Node `index` (hostname `node`) answers on its address: from this machine at the gateway
   * (TCP refused, so the node's stack answered), or where the host cannot reach nodes, from a
   * fresh exec in the node to its own address.
   */
  const assertReached = async (c: ScratchCluster, index: number, node: string, what: string): Promise<void> => {
    if (opts.hostReachesNodes ?? true) {
      assert.equal(await hostConnect(c.address(index), c.network.gateway), 'refused', what);
      return;
    }
    const r = await c.sh(node, `timeout 3 bash -c 'exec 3<>/dev/tcp/${c.address(index)}/9' 2>&1`);
    assert.match(r.stdout, /Connection refused/, `${what}: ${r.stdout}${r.stderr}`);
  };
  const hostnames = (nodes: NodeStatus[]): string[] => nodes.map((n) => n.hostname).sort();

  describe(`NodeProvider conformance: ${name}`, () => {
    before(async () => {
      const at = opts.scratchParent ?? '/var/tmp';
      await mkdir(at, { recursive: true });
      parent = await mkdtemp(join(at, 'slurmkit-conformance-'));
    });

    after(async () => {
      await rm(parent, { recursive: true, force: true });
    });

    describe('network', group, () => {
      check('ensureNetwork is idempotent', async (t) => {
        const c = await cluster(t);
        await c.ensureNetwork();
        const once = (await opts.leftovers(c.label)).sort();
        assert.notDeepEqual(once, [], 'ensureNetwork made nothing that leftovers can see');
        await c.ensureNetwork();
        assert.deepEqual((await opts.leftovers(c.label)).sort(), once);
        // The kept network still works: a node boots on it and the host reaches it.
        await c.create([c.node('alpha', 0)]);
        await assertReached(c, 0, 'alpha', 'alpha on the network');
      });

      check('ensureNetwork called twice at once makes one working network', async (t) => {
        const c = await cluster(t);
        const results = await Promise.allSettled([c.ensureNetwork(), c.ensureNetwork()]);
        assert.deepEqual(
          results.map((r) => r.status),
          ['fulfilled', 'fulfilled'],
          results.map((r) => (r.status === 'rejected' ? String(r.reason) : 'ok')).join('\n'),
        );
        await c.create([c.node('alpha', 0)]);
        await assertReached(c, 0, 'alpha', 'alpha on the network');
      });

      check('ensureNetwork that rejects leaves nothing behind', async (t) => {
        const c = await cluster(t);
        await assert.rejects(c.provider.ensureNetwork({ ...c.network, gateway: '10.215.999.1' }));
        assert.deepEqual(await opts.leftovers(c.label), []);
      });
    });

    describe('createNodes', group, () => {
      check('each node has its hostname and address, and is reached from another node and from the host at the gateway', async (t) => {
        const c = await cluster(t);
        await c.up([c.node('alpha', 0), c.node('beta', 1)]);
        assert.equal((await c.shOk('alpha', 'hostname')).trim(), 'alpha');
        assert.equal((await c.shOk('beta', 'hostname')).trim(), 'beta');
        for (const [node, index] of [['alpha', 0], ['beta', 1]] as const) {
          const addrs = await c.shOk(node, 'ip -4 -o addr show');
          assert.match(addrs, new RegExp(`inet ${c.address(index).replace(/\./g, '\\.')}/24 `), `${node}: ${addrs}`);
        }
        // TCP to a closed port everywhere; ICMP too where ping is installed.
        const tcp = await c.sh('alpha', `timeout 3 bash -c 'exec 3<>/dev/tcp/${c.address(1)}/9' 2>&1`);
        assert.match(tcp.stdout, /Connection refused/, `alpha -> beta: ${tcp.stdout}${tcp.stderr}`);
        await assertReached(c, 0, 'alpha', 'host (from the gateway) -> alpha');
        await assertReached(c, 1, 'beta', 'host (from the gateway) -> beta');
        const ping = await c.sh('beta', `command -v ping >/dev/null || exit 200; ping -c 1 -W 3 ${c.address(0)}`);
        if (ping.exitCode === 200) t.diagnostic('no ping in the node: checked by TCP only');
        else assert.equal(ping.exitCode, 0, `beta pings alpha: ${ping.stdout}${ping.stderr}`);
        if (sharesHost && (await which('ping'))) {
          const r = await run('ping', ['-c', '1', '-W', '3', '-I', c.network.gateway, c.address(1)], { allowFailure: true });
          assert.equal(r.exitCode, 0, `host pings beta from the gateway: ${r.stdout}${r.stderr}`);
        }
      });

      check(
        'each node has a private /tmp',
        async (t) => {
          const c = await cluster(t);
          const marker = `conformance-${c.label.id}`;
          await c.up([c.node('alpha', 0, { boot: `echo hi > /tmp/${marker}` }), c.node('beta', 1)]);
          assert.equal(await c.shOk('alpha', `cat /tmp/${marker}`), 'hi\n');
          assert.equal((await c.sh('beta', `test -e /tmp/${marker}`)).exitCode, 1, 'beta sees alpha’s /tmp');
          assert.equal(existsSync(`/tmp/${marker}`), false, 'the host sees alpha’s /tmp');
        },
        sharesHost,
      );

      check('mounts apply in order and inside the node only', async (t) => {
        const c = await cluster(t);
        const shared = join(c.dir, 'shared');
        const readOnly = join(c.dir, 'readonly');
        const target = join(c.dir, 'target');
        await mkdir(shared);
        await mkdir(readOnly);
        await mkdir(target);
        await writeFile(join(readOnly, 'hello.txt'), `hello ${c.label.id}\n`);
        await writeFile(join(shared, 'from-host'), 'host\n');
        const inner = `/tmp/inner-${c.label.id}`;
        await c.up([
          c.node('alpha', 0, {
            mounts: [
              // Under the node's /tmp (an earlier tmpfs): the target is made inside the node.
              { type: 'tmpfs', target: inner, mode: '0700', sizeMiB: 4 },
              { type: 'bind', source: readOnly, target: `${inner}/data`, readOnly: true },
              // A target that exists on the host.
              { type: 'bind', source: shared, target },
            ],
            boot: `test -e ${inner}/data/hello.txt`,
          }),
        ]);
        assert.equal(await c.shOk('alpha', `cat ${inner}/data/hello.txt`), `hello ${c.label.id}\n`);
        assert.equal((await c.shOk('alpha', `stat -f -c %T ${inner}; stat -c %a ${inner}`)).trim(), 'tmpfs\n700');
        const size = Number((await c.shOk('alpha', `df -k --output=size ${inner} | tail -1`)).trim());
        assert.equal(size, 4 * 1024, 'tmpfs sizeMiB');
        assert.notEqual((await c.sh('alpha', `touch ${inner}/data/new`)).exitCode, 0, 'a readOnly bind is writable');
        assert.equal(await c.shOk('alpha', `cat ${target}/from-host`), 'host\n');
        await c.shOk('alpha', `echo node > ${target}/from-node`);
        if (sharesHost) {
          assert.equal(await readFile(join(shared, 'from-node'), 'utf8'), 'node\n', 'a write through the bind did not reach the host');
          assert.deepEqual(await readdir(target), [], 'the bind is visible on the host');
          assert.deepEqual(await readdir(readOnly), ['hello.txt']);
          assert.equal(existsSync(inner), false, 'a mount target was made on the host');
        }
      });

      check('files are in place before boot, under a tmpfs too, with their owner and mode, and no other copy is left in the node', async (t) => {
        const c = await cluster(t);
        const secret = `secret-${hex(8)}`;
        const bytes = Buffer.from([0, 1, 2, 255, 10, 13]);
        const node = {
          ...c.node('alpha', 0, { boot: 'wc -c < /tmp/keys/key > /tmp/seen-at-boot' }),
          files: [
            { path: '/tmp/keys/key', content: secret, mode: 0o400, owner: 'nobody' },
            { path: '/etc/slurmkit-conformance/data.bin', content: bytes, mode: 0o644 },
          ],
        };
        await c.up([node]);
        assert.equal((await c.shOk('alpha', 'cat /tmp/seen-at-boot')).trim(), String(secret.length), 'the file was there at boot');
        assert.equal((await c.shOk('alpha', 'stat -c "%a %U" /tmp/keys/key /etc/slurmkit-conformance/data.bin')).trim(), '400 nobody\n644 root');
        assert.equal((await c.shOk('alpha', 'od -An -tx1 /etc/slurmkit-conformance/data.bin')).trim(), '00 01 02 ff 0a 0d');
        assert.equal((await c.sh('alpha', 'cat /tmp/keys/key', { user: '65534' })).stdout, secret, 'the owner reads it');
        // Nowhere else in the node's files, nor (for nodes that share this host) in the cluster's folder: the staging is gone.
        const where = sharesHost ? c.dir : '/';
        const found = await c.sh('alpha', `grep -rlsF --exclude-dir=proc --exclude-dir=sys --exclude-dir=dev ${secret} ${where} | grep -v '^/tmp/keys/key$' || true`);
        assert.equal(found.stdout.trim(), '', 'copies of the secret in the node');
      });

      check('a volume is shared by the nodes that mount it, kept when they are made again, and empty after removeByLabel', async (t) => {
        const c = await cluster(t);
        const vol = (hostname: string, index: number) => c.node(hostname, index, { mounts: [{ type: 'volume', name: 'data', target: '/tmp/data' }] });
        await c.up([vol('alpha', 0), vol('beta', 1)]);
        assert.equal(await c.shOk('alpha', 'ls -A /tmp/data'), '', 'a new volume is empty');
        await c.shOk('alpha', 'echo kept > /tmp/data/file');
        if (sharedVolumes) assert.equal(await c.shOk('beta', 'cat /tmp/data/file'), 'kept\n');
        // Each host's own: the node on another host sees an empty folder of the same name.
        else assert.equal(await c.shOk('beta', 'ls -A /tmp/data'), '', 'a volume reached another host without a filesystem that spans hosts');
        await c.provider.destroyNodes(c.label, ['alpha', 'beta'], { graceMs: 0 });
        // What `stop` does after its nodes are gone: everything else of the cluster goes, the volumes stay.
        assert.deepEqual((await c.provider.removeByLabel({ id: c.label.id, keepVolumes: true })).failed, []);
        await c.up([vol('alpha', 0)]);
        assert.equal(await c.shOk('alpha', 'cat /tmp/data/file'), 'kept\n', 'the volume lost its files when its nodes went');
        const report = await c.remove();
        assert.deepEqual(report.failed, []);
        // Where a provider keeps volumes in the work dir, they go with it (as `down` removes the cluster folder).
        await rm(c.workDir, { recursive: true, force: true });
        await c.up([vol('alpha', 0)]);
        assert.equal(await c.shOk('alpha', 'ls -A /tmp/data'), '', 'removeByLabel left the volume');
      });

      check('a mount target missing on the host rejects before anything starts', async (t) => {
        const c = await cluster(t);
        await c.ensureNetwork();
        const before_ = (await opts.leftovers(c.label)).sort();
        const missing = `/nonexistent-${c.label.id}/data`;
        await assert.rejects(
          c.create([
            c.node('alpha', 0, { boot: 'echo booted > /tmp/booted' }),
            c.node('beta', 1, { mounts: [{ type: 'bind', source: c.dir, target: missing }] }),
          ]),
          (err: Error) => err.message.includes(missing),
        );
        assert.deepEqual(await c.list(), []);
        assert.deepEqual((await opts.leftovers(c.label)).sort(), before_);
        assert.equal(existsSync(missing), false);
      }, sharesHost);

      check('a failing boot rejects with the node’s console output, destroys the request’s nodes and spares the others', async (t) => {
        const c = await cluster(t);
        await c.up([c.node('keep', 0)]);
        const before_ = (await opts.leftovers(c.label)).sort();
        const nap = napper();
        const marker = `boot-failed-${c.label.id}`;
        await assert.rejects(
          c.create([
            c.node('good', 1, { boot: nap.start }),
            c.node('bad', 2, { boot: `${nap.start}\necho ${marker} >&2\nexit 7` }),
          ]),
          (err: Error) => {
            assert.match(err.message, /\bbad\b/);
            assert.ok(err.message.includes(marker), `console output missing from: ${err.message}`);
            return true;
          },
        );
        const nodes = await c.list();
        assert.deepEqual(hostnames(nodes), ['keep']);
        assert.equal(nodes[0]!.running, true);
        assert.equal((await c.shOk('keep', 'hostname')).trim(), 'keep');
        if (sharesHost) assert.deepEqual(hostPidsNamed(nap.name), [], `${nap.name} still runs`);
        // Their interfaces go too (some kernels free them a moment after the processes).
        let now: string[] = [];
        await eventually(
          'leftovers as before the failed request',
          async () => JSON.stringify((now = (await opts.leftovers(c.label)).sort())) === JSON.stringify(before_),
          () => now.join(', '),
        );
      });

      check('a boot that outlasts timeoutMs rejects and leaves no process of the request', async (t) => {
        const c = await cluster(t);
        await c.ensureNetwork();
        const nap = napper();
        const started = Date.now();
        await assert.rejects(c.create([c.node('slow', 0, { boot: `cp /bin/sleep /tmp/${nap.name}; /tmp/${nap.name} 60` })], 500));
        assert.ok(Date.now() - started < 10_000, `took ${Date.now() - started} ms to give up`);
        assert.deepEqual(await c.list(), []);
        if (sharesHost) assert.deepEqual(hostPidsNamed(nap.name), [], `${nap.name} still runs`);
      });
    });

    describe('exec', group, () => {
      check('exec captures exit code, stdout and stderr, and passes input, env and cwd', async (t) => {
        const c = await cluster(t);
        await c.up([c.node('alpha', 0)]);
        assert.deepEqual(await c.sh('alpha', 'echo out; echo err >&2; exit 3'), { exitCode: 3, stdout: 'out\n', stderr: 'err\n' });
        const input = 'first line\nsecond line\n' + 'x'.repeat(200_000) + '\n';
        const echoed = await c.provider.exec({ label: c.label, node: 'alpha', command: ['cat'], stdio: 'capture', input });
        assert.equal(echoed.exitCode, 0);
        assert.ok(echoed.stdout === input, `cat returned ${echoed.stdout.length} of ${input.length} characters`);
        assert.equal((await c.sh('alpha', 'printf %s "$SK_CONFORMANCE"', { env: { SK_CONFORMANCE: 'a b $c' } })).stdout, 'a b $c');
        assert.equal((await c.sh('alpha', 'pwd', { cwd: '/tmp' })).stdout, '/tmp\n');
        assert.equal((await c.sh('alpha', 'id -un')).stdout, 'root\n');
      });

      check('exec output is the command’s own: no shell startup file runs', async (t) => {
        const c = await cluster(t);
        await c.up([c.node('alpha', 0)]);
        // A HOME whose .bashrc would speak if bash took the exec for a remote shell (rshd/sshd).
        const home = join(c.dir, 'home');
        await mkdir(home);
        await writeFile(join(home, '.bashrc'), 'echo startup-file-ran\n');
        assert.deepEqual(await c.sh('alpha', 'echo out', { env: { HOME: home } }), { exitCode: 0, stdout: 'out\n', stderr: '' });
      }, sharesHost);

      check('exec runs as the requested user', async (t) => {
        const c = await cluster(t);
        await c.up([c.node('alpha', 0)]);
        assert.equal((await c.sh('alpha', 'id -un', { user: 'nobody' })).stdout, 'nobody\n');
        assert.equal((await c.sh('alpha', 'id -u', { user: '65534' })).stdout, '65534\n');
      });

      check('open keeps a command running with its stdin and stdout as pipes, and close ends it', async (t) => {
        const provider = make();
        if (!provider.open) {
          t.skip(`${name} has no open (callers use exec)`);
          return;
        }
        const c = await cluster(t);
        await assert.rejects(provider.open({ label: c.label, node: 'alpha', command: ['cat'] }), isNotFound, 'no node yet');
        await c.up([c.node('alpha', 0)]);
        const echo = await provider.open({
          label: c.label,
          node: 'alpha',
          command: ['bash', '-c', 'echo ready; while read -r line; do echo "got $line on $(hostname) as $(id -un)"; done; echo stdin-closed >&2; exit 5'],
        });
        const lines = createInterface({ input: echo.stdout })[Symbol.asyncIterator]();
        const next = async (): Promise<string> => (await lines.next()).value as string;
        assert.equal(await next(), 'ready');
        // Several requests to one process, each answered before the next is sent.
        for (const word of ['one', 'two', 'three']) {
          echo.stdin.write(`${word}\n`);
          assert.equal(await next(), `got ${word} on alpha as root`);
        }
        echo.stdin.end();
        assert.equal(await echo.exited, 5, 'its own exit code once its stdin ended');
        assert.match(echo.stderrTail(), /stdin-closed/);

        const sleeper = await provider.open({ label: c.label, node: 'alpha', command: ['sleep', '1000'] });
        sleeper.close();
        const code = await Promise.race([sleeper.exited, sleep(15_000).then(() => 'still running')]);
        assert.notEqual(code, 'still running', 'close() ended it');
        // The kill may land a moment after close's own process ended.
        const left = async () => (await c.sh('alpha', 'pgrep -x sleep -a | grep -c " 1000$" || true')).stdout.trim();
        for (let i = 0; i < 50 && (await left()) !== '0'; i++) await sleep(100);
        assert.equal(await left(), '0', 'nothing of it left in the node');
      });

      check('exec on a node that is not running rejects NOT_FOUND', async (t) => {
        const c = await cluster(t);
        await assert.rejects(c.sh('alpha', 'true'), isNotFound, 'no cluster at all');
        await c.up([c.node('alpha', 0)]);
        await assert.rejects(c.sh('ghost', 'true'), isNotFound, 'no such node');
        await c.provider.destroyNodes(c.label, ['alpha'], { graceMs: 0 });
        await assert.rejects(c.sh('alpha', 'true'), isNotFound, 'a destroyed node');
      });
    });

    describe('list', group, () => {
      check('list shows running nodes with their init pid and processes', async (t) => {
        const c = await cluster(t);
        assert.deepEqual(await c.list(), []);
        const nap = napper();
        await c.up([c.node('alpha', 0, { boot: nap.start }), c.node('beta', 1)]);
        let nodes: NodeStatus[] = [];
        await eventually(
          `${nap.name} in alpha's processes`,
          async () => (nodes = await c.list()).find((n) => n.hostname === 'alpha')?.processes.includes(nap.name) === true,
          () => JSON.stringify(nodes),
        );
        assert.deepEqual(hostnames(nodes), ['alpha', 'beta']);
        for (const n of nodes) {
          assert.equal(n.running, true, n.hostname);
          assert.ok(Number.isInteger(n.pid) && n.pid! > 1, `${n.hostname} pid ${n.pid}`);
        }
        assert.notEqual(nodes[0]!.pid, nodes[1]!.pid);
        assert.equal(nodes.find((n) => n.hostname === 'beta')!.processes.includes(nap.name), false);
        if (sharesHost) {
          for (const n of nodes) {
            // The pid is a host PID, of a process in a PID namespace of its own.
            assert.notEqual(readlinkSync(`/proc/${n.pid}/ns/pid`), readlinkSync('/proc/self/ns/pid'), n.hostname);
          }
        }
      });

      check('list shows programs started by exec', async (t) => {
        const c = await cluster(t);
        await c.up([c.node('alpha', 0)]);
        const nap = napper();
        await c.shOk('alpha', nap.start);
        let nodes: NodeStatus[] = [];
        await eventually(
          `${nap.name} in alpha's processes`,
          async () => (nodes = await c.list()).find((n) => n.hostname === 'alpha')?.processes.includes(nap.name) === true,
          () => JSON.stringify(nodes),
          2_000,
        );
      });
    });

    describe('destroyNodes', group, () => {
      check('destroyNodes stops only the named nodes, frees their interfaces and is idempotent', async (t) => {
        const c = await cluster(t);
        await c.up([c.node('alpha', 0), c.node('gamma', 2)]);
        const before_ = (await opts.leftovers(c.label)).sort();
        const nap = napper();
        await c.create([c.node('beta', 1, { boot: nap.start })]);
        assert.deepEqual(hostnames(await c.list()), ['alpha', 'beta', 'gamma']);
        await c.provider.destroyNodes(c.label, ['beta']);
        const nodes = await c.list();
        assert.deepEqual(hostnames(nodes), ['alpha', 'gamma']);
        assert.ok(nodes.every((n) => n.running));
        if (sharesHost) assert.deepEqual(hostPidsNamed(nap.name), [], `${nap.name} still runs`);
        await assert.rejects(c.sh('beta', 'true'), isNotFound);
        assert.equal((await c.shOk('gamma', 'hostname')).trim(), 'gamma');
        let now: string[] = [];
        await eventually(
          'leftovers as before beta was created',
          async () => JSON.stringify((now = (await opts.leftovers(c.label)).sort())) === JSON.stringify(before_),
          () => now.join(', '),
        );
        await c.provider.destroyNodes(c.label, ['beta']);
        await c.provider.destroyNodes(c.label, ['never-was'], { graceMs: 0 });
        assert.deepEqual(hostnames(await c.list()), ['alpha', 'gamma']);
      });

      check('a destroyed node can be created again at once', async (t) => {
        const c = await cluster(t);
        await c.up([c.node('alpha', 0), c.node('beta', 1)]);
        for (let round = 0; round < 3; round++) {
          await c.provider.destroyNodes(c.label, ['alpha'], { graceMs: 0 });
          await c.create([c.node('alpha', 0)]);
        }
        assert.equal((await c.shOk('alpha', 'hostname')).trim(), 'alpha');
        const tcp = await c.sh('beta', `timeout 3 bash -c 'exec 3<>/dev/tcp/${c.address(0)}/9' 2>&1`);
        assert.match(tcp.stdout, /Connection refused/, `beta -> alpha: ${tcp.stdout}${tcp.stderr}`);
      });

      check(
        'SIGKILL to a node’s init (pid from list) ends every process in it',
        async (t) => {
          const c = await cluster(t);
          const fromBoot = napper();
          const fromExec = napper();
          await c.up([c.node('alpha', 0, { boot: fromBoot.start }), c.node('beta', 1)]);
          await c.shOk('alpha', fromExec.start);
          await eventually('both nappers running', async () => hostPidsNamed(fromBoot.name).length + hostPidsNamed(fromExec.name).length === 2, () => '');
          const alpha = (await c.list()).find((n) => n.hostname === 'alpha');
          assert.ok(alpha?.pid, 'alpha has no pid in list()');
          process.kill(alpha.pid, 'SIGKILL');
          let nodes: NodeStatus[] = [];
          await eventually(
            'alpha not running',
            async () => !(nodes = await c.list()).some((n) => n.hostname === 'alpha' && (n.running || n.processes.length > 0)),
            () => JSON.stringify(nodes),
          );
          await eventually('every process of alpha gone', async () => hostPidsNamed(fromBoot.name).length + hostPidsNamed(fromExec.name).length === 0, () =>
            JSON.stringify([hostPidsNamed(fromBoot.name), hostPidsNamed(fromExec.name)]),
          );
          await assert.rejects(c.sh('alpha', 'true'), isNotFound);
          assert.equal((await c.shOk('beta', 'hostname')).trim(), 'beta');
        },
        sharesHost,
      );
    });

    describe('removeByLabel', group, () => {
      check('removeByLabel({id}) removes and reports every resource, and a second call finds nothing', async (t) => {
        const c = await cluster(t);
        const nap = napper();
        await c.up([c.node('alpha', 0, { boot: nap.start }), c.node('beta', 1)]);
        const fromExec = napper();
        await c.shOk('beta', fromExec.start);
        const report = await c.remove();
        assert.deepEqual(report.failed, []);
        assert.deepEqual([...report.removed].sort(), [...report.found].sort());
        for (const kind of (await opts.reportedResources?.()) ?? []) {
          assert.ok(report.found.some((f) => kind.test(f)), `nothing like ${kind} in ${JSON.stringify(report.found)}`);
        }
        assert.deepEqual(await opts.leftovers(c.label), []);
        assert.deepEqual(await c.list(), []);
        if (sharesHost) {
          await eventually('no napper left', async () => hostPidsNamed(nap.name).length + hostPidsNamed(fromExec.name).length === 0, () => '');
        }
        assert.deepEqual(await c.remove(), { found: [], removed: [], failed: [] });
      });

      check('removeByLabel({home, keepIds, keepNames}) removes that home’s other clusters and spares kept ids, kept names and other homes', async (t) => {
        const home = hex(4);
        const gone = await cluster(t, { home, name: 'gone' });
        const kept = await cluster(t, { home, name: 'kept' });
        // A cluster whose state cannot be read: gc knows its folder's name, not its id.
        const byName = await cluster(t, { home, name: 'unread' });
        const stranger = await cluster(t, { name: 'stranger' });
        const spared = [kept, byName, stranger];
        await Promise.all([gone, ...spared].map((c) => c.up([c.node('alpha', 0)])));
        const before = await Promise.all(spared.map(async (c) => (await opts.leftovers(c.label)).sort()));
        const select = { home, keepIds: [kept.label.id], keepNames: [byName.label.name] };
        const report = await gone.provider.removeByLabel(select);
        assert.deepEqual(report.failed, []);
        assert.ok(report.found.length > 0, 'found nothing of the cluster to remove');
        const text = JSON.stringify(report);
        assert.ok(spared.every((c) => !text.includes(c.label.id)), `report names a spared cluster: ${text}`);
        assert.deepEqual(await opts.leftovers(gone.label), []);
        assert.deepEqual(await gone.list(), []);
        for (const [i, c] of spared.entries()) {
          assert.deepEqual((await opts.leftovers(c.label)).sort(), before[i], `${c.label.name} lost resources`);
          assert.equal((await c.shOk('alpha', 'hostname')).trim(), 'alpha');
          await assertReached(c, 0, 'alpha', `${c.label.name} lost its network`);
        }
        assert.deepEqual((await gone.provider.removeByLabel(select)).found, []);
      });
    });

    test('knownGaps name only checks of this suite', () => {
      const unknown = [...gaps.keys()].filter((g) => !titles.has(g));
      assert.deepEqual(unknown, [], `knownGaps for checks that do not exist: ${unknown.join(', ')}`);
    });
  });
}
