/**
 * A Docker engine of a test's own: Debian's dockerd with its own data root, exec root, pid file
 * and socket, started for a test file and stopped (with everything it made) when it ends.
 *
 * `--ip-forward=false` keeps the host's ip_forward and FORWARD policy as they are (dockerd would
 * otherwise set the policy to DROP for every bridge on the machine); containers on one
 * user-defined network still reach each other and the host. `--bridge=none`: no default bridge,
 * slurmkit makes a network per cluster. iptables stays on, as on a user's engine.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, rm, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import Docker from 'dockerode';
import { run, sleep, which } from '../util/run.js';

export interface TestEngine {
  /** DOCKER_HOST for this engine. */
  host: string;
  docker: Docker;
  /** Sets DOCKER_HOST to this engine for the rest of the process, until stop(). */
  use(): void;
  stop(): Promise<void>;
}

/** Whether dockerd is installed (tests skip with the reason when it is not). */
export async function haveDockerd(): Promise<boolean> {
  return (await which('dockerd')) !== undefined;
}

/** iptables chains dockerd makes, which it leaves behind when it stops. */
const DOCKER_CHAINS: [string, string[]][] = [
  ['filter', ['DOCKER-USER', 'DOCKER-ISOLATION-STAGE-1', 'DOCKER-ISOLATION-STAGE-2', 'DOCKER']],
  ['nat', ['DOCKER']],
];

async function iptablesRules(): Promise<string> {
  const save = await which('iptables-save');
  return save ? (await run(save, [], { allowFailure: true })).stdout : '';
}

/**
 * Removes the chains and jumps a test engine added to the host's firewall, if they were not
 * there before it started (a user's own engine may have made them: those stay).
 */
async function removeDockerChains(before: string): Promise<void> {
  if (!(await which('iptables'))) return;
  // Another engine (a user's, another test run's) still uses them.
  if ((await run('pgrep', ['-x', 'dockerd'], { allowFailure: true })).stdout.trim() !== '') return;
  for (const [table, chains] of DOCKER_CHAINS) {
    for (const chain of chains) {
      if (before.includes(`:${chain} `)) continue;
      const rules = (await run('iptables', ['-t', table, '-S'], { allowFailure: true })).stdout.split('\n');
      for (const rule of rules.filter((r) => r.startsWith('-A ') && r.includes(`-j ${chain}`))) {
        const args = rule.replace(/^-A /, '-D ').match(/(?:[^\s"]+|"[^"]*")+/g) ?? [];
        await run('iptables', ['-t', table, ...args.map((a) => a.replace(/^"|"$/g, ''))], { allowFailure: true });
      }
    }
    for (const chain of chains) {
      if (before.includes(`:${chain} `)) continue;
      await run('iptables', ['-t', table, '-F', chain], { allowFailure: true });
    }
    for (const chain of chains) {
      if (before.includes(`:${chain} `)) continue;
      await run('iptables', ['-t', table, '-X', chain], { allowFailure: true });
    }
  }
}

/**
 * Starts an engine; resolves once it answers /_ping. With `ipForward`, dockerd does what it does
 * on a user's machine: turns on ip_forward and sets the FORWARD policy to DROP; stop() puts both
 * back as they were.
 */
export async function startTestEngine(opts: { ipForward?: boolean; netns?: string; insecureRegistry?: string } = {}): Promise<TestEngine> {
  const id = randomBytes(3).toString('hex');
  const root = join('/var/lib/slurmkit-test', `dockerd-${id}`);
  const execRoot = `/run/skd-${id}`;
  await mkdir(root, { recursive: true, mode: 0o700 });
  const socket = join(root, 'docker.sock');
  const host = `unix://${socket}`;
  // In a network namespace of its own (a host of a test swarm), the engine's firewall and
  // forwarding are that namespace's: nothing of this machine's to keep or put back.
  const ownNet = opts.netns !== undefined;
  const firewallBefore = ownNet ? '' : await iptablesRules();
  const forwardingBefore = (await readFile('/proc/sys/net/ipv4/ip_forward', 'utf8')).trim();
  const policyBefore = /^:FORWARD (\w+)/m.exec(firewallBefore)?.[1];
  const args = [
    '--pdeathsig',
    'TERM',
    'dockerd',
    `--data-root=${join(root, 'data')}`,
    `--exec-root=${execRoot}`,
    `--pidfile=${join(root, 'dockerd.pid')}`,
    `--host=${host}`,
    '--bridge=none',
    `--ip-forward=${opts.ipForward || ownNet ? 'true' : 'false'}`,
    '--log-level=warn',
    ...(opts.insecureRegistry ? [`--insecure-registry=${opts.insecureRegistry}`] : []),
  ];
  // nsenter --net, not `ip netns exec`, which would hide /sys/fs/cgroup from the engine.
  const [cmd, argv] = ownNet ? ['nsenter', [`--net=/run/netns/${opts.netns}`, 'setpriv', ...args]] : ['setpriv', args];
  const child: ChildProcess = spawn(cmd, argv, { stdio: ['ignore', 'ignore', 'pipe'], detached: false });
  let log = '';
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (log = (log + d).slice(-4000)));
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
  const docker = new Docker({ socketPath: socket });
  const deadline = Date.now() + 30_000;
  for (;;) {
    try {
      await docker.ping();
      break;
    } catch {
      if (child.exitCode !== null || Date.now() > deadline) {
        child.kill('SIGKILL');
        await rm(root, { recursive: true, force: true });
        throw new Error(`dockerd did not start (exit ${child.exitCode}):\n${log}`);
      }
      await sleep(100);
    }
  }
  let previous: string | undefined;
  let used = false;
  return {
    host,
    docker,
    use() {
      previous = process.env.DOCKER_HOST;
      used = true;
      process.env.DOCKER_HOST = host;
    },
    async stop() {
      if (used) {
        if (previous === undefined) delete process.env.DOCKER_HOST;
        else process.env.DOCKER_HOST = previous;
      }
      // Containers first, so that dockerd's own shutdown does not wait out their stop timeouts.
      const containers = await docker.listContainers({ all: true }).catch(() => []);
      await Promise.all(containers.map((c) => docker.getContainer(c.Id).remove({ force: true }).catch(() => undefined)));
      // Networks too: dockerd leaves their bridges on the host when it stops with them.
      const networks = await docker.listNetworks().catch(() => []);
      const builtin = new Set(['bridge', 'host', 'none']);
      await Promise.all(networks.filter((n) => !builtin.has(n.Name)).map((n) => docker.getNetwork(n.Id).remove().catch(() => undefined)));
      child.kill('SIGTERM');
      const stopped = await Promise.race([exited.then(() => true), sleep(20_000).then(() => false)]);
      if (!stopped) child.kill('SIGKILL');
      await exited;
      if (!ownNet) await removeDockerChains(firewallBefore);
      if (opts.ipForward && !ownNet) {
        await writeFile('/proc/sys/net/ipv4/ip_forward', forwardingBefore);
        if (policyBefore) await run('iptables', ['-P', 'FORWARD', policyBefore], { allowFailure: true });
      }
      // dockerd's data root holds overlay mounts while it runs; it unmounts them when it stops.
      const mounts = (await readFile('/proc/self/mounts', 'utf8')).split('\n').map((l) => l.split(' ')[1] ?? '');
      for (const m of mounts.filter((p) => p.startsWith(root) || p.startsWith(execRoot)).reverse()) {
        await run('umount', ['-l', m], { allowFailure: true });
      }
      await rm(root, { recursive: true, force: true });
      await rm(execRoot, { recursive: true, force: true });
    },
  };
}

/**
 * Runs `fn` with an engine of its own (DOCKER_HOST pointing at it), stopped afterwards; null,
 * without running it, where dockerd is not installed.
 */
export async function onTestEngine<T>(fn: (engine: TestEngine) => Promise<T>): Promise<T | null> {
  if (!(await haveDockerd())) return null;
  const engine = await startTestEngine();
  engine.use();
  try {
    return await fn(engine);
  } finally {
    await engine.stop();
  }
}

/**
 * For a test file: starts an engine before its tests (DOCKER_HOST pointing at it, the node
 * image in it) and stops it after them. `skip` is the reason to skip when dockerd is missing.
 */
export async function useTestEngine(
  hooks: { before: (fn: () => Promise<void>) => void; after: (fn: () => Promise<void>) => void },
  opts: { image?: boolean; ipForward?: boolean } = {},
): Promise<{ skip: string | false; engine: () => TestEngine }> {
  if (!(await haveDockerd())) return { skip: 'dockerd is not installed (scripts/setup.sh installs docker.io)', engine: () => assertNever() };
  let engine: TestEngine | undefined;
  hooks.before(async () => {
    engine = await startTestEngine({ ipForward: opts.ipForward ?? false });
    engine.use();
    if (opts.image ?? true) {
      const { ensureImage } = await import('../providers/docker/image.js');
      await ensureImage(engine.docker);
    }
  });
  hooks.after(async () => {
    await engine?.stop();
  });
  return { skip: false, engine: () => engine ?? assertNever() };
}

function assertNever(): never {
  throw new Error('the test engine is not running (used outside its tests?)');
}

/**
 * Everything of one cluster in an engine and on this host, found without the provider: its
 * containers, networks and volumes by label, its bridge, and firewall rules (v4 and v6) naming its id.
 */
export async function engineLeftovers(docker: Docker, id: string): Promise<string[]> {
  const filters = { label: [`slurmkit.id=${id}`] };
  const [containers, networks, volumes] = await Promise.all([
    docker.listContainers({ all: true, filters }),
    docker.listNetworks({ filters }),
    docker.listVolumes({ filters }),
  ]);
  const links = (await run('ip', ['-o', 'link', 'show'], { allowFailure: true })).stdout
    .split('\n')
    .map((l) => l.split(': ')[1]?.split('@')[0] ?? '')
    .filter((l) => l === `skd${id}`);
  const rules: string[] = [];
  for (const save of ['iptables-save', 'ip6tables-save']) {
    const bin = await which(save);
    if (!bin) continue;
    // Rule lines only: without -c they carry no counters a numeric id could match by chance.
    rules.push(...(await run(bin, [], { allowFailure: true })).stdout.split('\n').filter((r) => r.startsWith('-A ') && r.includes(id)));
  }
  return [
    ...containers.map((c) => `container ${c.Names[0]?.replace(/^\//, '')} (${c.State})`),
    ...networks.map((n) => `network ${n.Name}`),
    ...(volumes.Volumes ?? []).map((v) => `volume ${v.Name}`),
    ...links.map((l) => `link ${l}`),
    ...rules.map((r) => `rule ${r}`),
  ];
}
