/**
 * Several Docker hosts on this one machine, for tests of clusters that span hosts: each host is
 * a network namespace of its own on a bridge this harness makes, running a dockerd of its own
 * (own data root, exec root and socket; its firewall rules stay inside its namespace), and the
 * engines are joined into a swarm. Traffic goes only to the addresses made here. stop() removes
 * everything: engines, namespaces, bridge, folders.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { overlaps } from '../cluster/subnet.js';
import { run, sleep } from '../util/run.js';
import { startTestEngine, type TestEngine } from './dockerd.js';

export interface TestHost {
  /** Short name, e.g. h1. */
  name: string;
  /** The host's address on the harness bridge (Swarm listens and advertises there). */
  address: string;
  netns: string;
  engine: TestEngine;
  /** Its Swarm node id. */
  nodeId: string;
}

export interface TestSwarm {
  /** The first host is the swarm's manager. */
  hosts: TestHost[];
  /** The harness bridge's subnet. */
  subnet: string;
  /** With `registry: true`: a Docker registry (Debian's docker-registry) on the bridge, host:port, which every engine trusts over HTTP. */
  registry?: string;
  stop(): Promise<void>;
}

/** Port of the harness registry (not 5000, where a system registry may listen on every address). */
const REGISTRY_PORT = 5055;

/** A /24 for the harness bridge that nothing on this machine routes yet. */
async function freeSubnet(): Promise<string> {
  const routes = (await run('ip', ['-4', 'route', 'show', 'table', 'all'], { allowFailure: true })).stdout;
  const taken = [...routes.matchAll(/^(?:\S+ )?(\d+\.\d+\.\d+\.\d+\/\d+)/gm)].map((m) => m[1]!);
  for (let i = 0; i < 64; i++) {
    const candidate = `10.219.${randomBytes(1)[0]!}.0/24`;
    if (!taken.some((t) => overlaps(candidate, t))) return candidate;
  }
  throw new Error('no free /24 in 10.219.0.0/16 for the test swarm');
}

/**
 * Starts `count` hosts and joins their engines into a swarm (the first is the manager; with
 * `join: false` they stay out of any swarm, for code that makes its own). On a failure
 * half-way, what was made is removed before the error is thrown.
 */
export async function startTestSwarm(count: number, opts: { join?: boolean; registry?: boolean } = {}): Promise<TestSwarm> {
  const id = randomBytes(3).toString('hex');
  const bridge = `sksw${id}`;
  const subnet = await freeSubnet();
  const prefix = subnet.split('.').slice(0, 3).join('.');
  const hosts: TestHost[] = [];
  const made: { netns: string[]; engines: TestEngine[]; bridge: boolean; registry?: ChildProcess; registryRoot?: string } = { netns: [], engines: [], bridge: false };
  const registry = opts.registry ? `${prefix}.1:${REGISTRY_PORT}` : undefined;
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    // Engines first (each leaves its swarm with its data root), then their namespaces and the bridge.
    await Promise.all(made.engines.map((e) => e.stop().catch(() => undefined)));
    for (const [i, ns] of made.netns.entries()) {
      // What an engine left running there (containerd, a shim) would keep the namespace alive.
      const pids = (await run('ip', ['netns', 'pids', ns], { allowFailure: true })).stdout.split('\n').filter((p) => /^\d+$/.test(p));
      if (pids.length > 0) await run('kill', ['-KILL', ...pids], { allowFailure: true });
      await run('ip', ['link', 'delete', `${bridge}v${i + 1}`], { allowFailure: true });
      await run('ip', ['netns', 'delete', ns], { allowFailure: true });
    }
    if (made.registry) {
      const exited = new Promise((resolve) => made.registry!.once('exit', resolve));
      if (made.registry.exitCode === null) made.registry.kill('SIGTERM');
      await Promise.race([exited, sleep(5000)]);
      made.registry.kill('SIGKILL');
    }
    if (made.registryRoot) await rm(made.registryRoot, { recursive: true, force: true });
    if (made.bridge) await run('ip', ['link', 'delete', bridge], { allowFailure: true });
  };
  try {
    await run('ip', ['link', 'add', bridge, 'type', 'bridge']);
    made.bridge = true;
    await run('ip', ['addr', 'add', `${prefix}.1/24`, 'dev', bridge]);
    await run('ip', ['link', 'set', bridge, 'up']);
    for (let i = 1; i <= count; i++) {
      const netns = `${bridge}h${i}`;
      const address = `${prefix}.${10 + i}`;
      await run('ip', ['netns', 'add', netns]);
      made.netns.push(netns);
      const outside = `${bridge}v${i}`;
      await run('ip', ['link', 'add', outside, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', netns]);
      await run('ip', ['link', 'set', outside, 'master', bridge, 'up']);
      const inNs = (...args: string[]) => run('ip', ['-n', netns, ...args]);
      await inNs('link', 'set', 'lo', 'up');
      await inNs('addr', 'add', `${address}/24`, 'dev', 'eth0');
      await inNs('link', 'set', 'eth0', 'up');
      await inNs('route', 'add', 'default', 'via', `${prefix}.1`);
      hosts.push({ name: `h${i}`, address, netns, engine: undefined as unknown as TestEngine, nodeId: '' });
    }
    if (registry) {
      await mkdir('/var/lib/slurmkit-test', { recursive: true, mode: 0o700 });
      made.registryRoot = await mkdtemp('/var/lib/slurmkit-test/registry-');
      const config = join(made.registryRoot, 'config.yml');
      await writeFile(config, `version: 0.1\nlog: {level: error}\nstorage: {filesystem: {rootdirectory: ${join(made.registryRoot, 'data')}}}\nhttp: {addr: "${registry}"}\n`);
      made.registry = spawn('setpriv', ['--pdeathsig', 'TERM', 'docker-registry', 'serve', config], { stdio: ['ignore', 'ignore', 'pipe'] });
      let log = '';
      made.registry.stderr!.setEncoding('utf8').on('data', (d: string) => (log = (log + d).slice(-2000)));
      const deadline = Date.now() + 15_000;
      while (!(await fetch(`http://${registry}/v2/`).then((r) => r.ok, () => false))) {
        if (made.registry.exitCode !== null || Date.now() > deadline) throw new Error(`docker-registry did not start on ${registry}:\n${log}`);
        await sleep(100);
      }
    }
    // The engines start side by side (each takes about a second).
    await Promise.all(
      hosts.map(async (h) => {
        h.engine = await startTestEngine({ netns: h.netns, ...(registry ? { insecureRegistry: registry } : {}) });
        made.engines.push(h.engine);
      }),
    );
    if (opts.join === false) return { hosts, subnet, ...(registry ? { registry } : {}), stop };
    const [manager, ...others] = hosts;
    await manager!.engine.docker.swarmInit({ ListenAddr: `${manager!.address}:2377`, AdvertiseAddr: manager!.address, ForceNewCluster: false });
    const token = ((await manager!.engine.docker.swarmInspect()) as { JoinTokens: { Worker: string } }).JoinTokens.Worker;
    await Promise.all(
      others.map((h) => h.engine.docker.swarmJoin({ ListenAddr: `${h.address}:2377`, AdvertiseAddr: h.address, RemoteAddrs: [`${manager!.address}:2377`], JoinToken: token })),
    );
    for (const h of hosts) h.nodeId = ((await h.engine.docker.info()) as { Swarm: { NodeID: string } }).Swarm.NodeID;
    // A node that has just joined is "unknown" to the manager for a moment: the swarm is formed
    // once the manager sees every node ready.
    const readyBy = Date.now() + 30_000;
    for (;;) {
      const nodes = (await manager!.engine.docker.listNodes()) as { Status: { State: string } }[];
      if (nodes.length === hosts.length && nodes.every((n) => n.Status.State === 'ready')) break;
      if (Date.now() > readyBy) throw new Error(`the swarm did not form in 30 s: ${nodes.map((n) => n.Status.State).join(', ')}`);
      await sleep(100);
    }
    return { hosts, subnet, ...(registry ? { registry } : {}), stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** The network namespaces of this machine (`ip netns`), for tests that check none is left. */
export async function netnsNames(): Promise<string[]> {
  return (await run('ip', ['netns', 'list'], { allowFailure: true })).stdout
    .split('\n')
    .map((l) => l.split(' ')[0] ?? '')
    .filter(Boolean)
    .sort();
}

/** Everything on any host's engine that carries this cluster's id (containers, networks, volumes). */
export async function swarmLeftovers(swarm: TestSwarm, id: string): Promise<string[]> {
  const filters = { label: [`slurmkit.id=${id}`] };
  const found = await Promise.all(
    swarm.hosts.map(async (h) => {
      const d = h.engine.docker;
      const [c, n, v] = await Promise.all([d.listContainers({ all: true, filters }), d.listNetworks({ filters }), d.listVolumes({ filters })]);
      return [...c.map((x) => `${h.name} container ${x.Names[0]}`), ...n.map((x) => `${h.name} network ${x.Name}`), ...(v.Volumes ?? []).map((x) => `${h.name} volume ${x.Name}`)];
    }),
  );
  return found.flat();
}
