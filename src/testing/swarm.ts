/**
 * Several Docker hosts on this one machine, for tests of clusters that span hosts: each host is
 * a network namespace of its own on a bridge this harness makes, running a dockerd of its own
 * (own data root, exec root and socket; its firewall rules stay inside its namespace), and the
 * engines are joined into a swarm. Traffic goes only to the addresses made here. stop() removes
 * everything: engines, namespaces, bridge, folders.
 */
import { randomBytes } from 'node:crypto';
import { overlaps } from '../cluster/subnet.js';
import { run } from '../util/run.js';
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
  stop(): Promise<void>;
}

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
export async function startTestSwarm(count: number, opts: { join?: boolean } = {}): Promise<TestSwarm> {
  const id = randomBytes(3).toString('hex');
  const bridge = `sksw${id}`;
  const subnet = await freeSubnet();
  const prefix = subnet.split('.').slice(0, 3).join('.');
  const hosts: TestHost[] = [];
  const made: { netns: string[]; engines: TestEngine[]; bridge: boolean } = { netns: [], engines: [], bridge: false };
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
    // The engines start side by side (each takes about a second).
    await Promise.all(
      hosts.map(async (h) => {
        h.engine = await startTestEngine({ netns: h.netns });
        made.engines.push(h.engine);
      }),
    );
    if (opts.join === false) return { hosts, subnet, stop };
    const [manager, ...others] = hosts;
    await manager!.engine.docker.swarmInit({ ListenAddr: `${manager!.address}:2377`, AdvertiseAddr: manager!.address, ForceNewCluster: false });
    const token = ((await manager!.engine.docker.swarmInspect()) as { JoinTokens: { Worker: string } }).JoinTokens.Worker;
    await Promise.all(
      others.map((h) => h.engine.docker.swarmJoin({ ListenAddr: `${h.address}:2377`, AdvertiseAddr: h.address, RemoteAddrs: [`${manager!.address}:2377`], JoinToken: token })),
    );
    for (const h of hosts) h.nodeId = ((await h.engine.docker.info()) as { Swarm: { NodeID: string } }).Swarm.NodeID;
    return { hosts, subnet, stop };
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
