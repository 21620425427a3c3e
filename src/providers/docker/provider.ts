import { mkdir, writeFile } from 'node:fs/promises';
import { PassThrough, type Duplex } from 'node:stream';
import type Docker from 'dockerode';
import type {
  Check,
  ClusterLabel,
  CreateNodesRequest,
  ExecRequest,
  ExecResult,
  LabelSelector,
  LeftoverReport,
  Mount,
  NetworkRequest,
  NodeProvider,
  NodeSpec,
  NodeProcess,
  NodeStatus,
  OpenRequest,
  PreflightRequest,
  ProviderCapabilities,
} from '../types.js';
import { SlurmkitError } from '../../util/errors.js';
import { packTar } from '../../util/tar.js';
import { run, sleep, which } from '../../util/run.js';
import { LABEL, answerWithin, engine, engineEndpoint, engineMessage, isUnreachable, reachable, statusOf, unreachableError } from './engine.js';
import { defaultRecipe, ensureImage, ensureRuntime, imageTag, type EnsuredImage } from './image.js';
import { installFilesScript } from '../files.js';

const NODE_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
/** Where a node's boot commands are put before it starts (outside every tmpfs the layout mounts). */
const BOOT_FILE = '/.slurmkit/boot';
const READY = 'slurmkit-boot: ready';
const FILES_DIR = '/.slurmkit/files';
/**
 * The node's main process, under the engine's init (which reaps orphans such as slurmstepd's):
 * runs the boot commands, says whether they succeeded, then idles. On SIGTERM (docker stop) it
 * passes the signal to every process of the node and waits (up to 10 s) until they are gone:
 * daemons are not its children, and whatever still runs when it exits is killed outright, so
 * slurmctld would lose the state it saves on SIGTERM.
 */
const MAIN = [
  `trap 'kill -TERM -1 2>/dev/null; for _ in $(seq 100); do kill -0 -1 2>/dev/null || break; sleep 0.1; done; exit 0' TERM`,
  `bash ${BOOT_FILE} || { rc=$?; echo "slurmkit-boot: failed with exit code $rc"; exit $rc; }`,
  `echo '${READY}'`,
  'sleep infinity &',
  'wait',
].join('\n');
/**
 * What a node needs beyond a plain container.
 * - A FUSE client (GlusterFS) mounts inside the node: the device and the right to mount.
 * - A sandboxed node (bubblewrap under slurmstepd): the engine's seccomp profile refuses
 *   pivot_root to a process without capabilities and its masked /proc paths forbid mounting a
 *   fresh /proc, so both go (systempaths=unconfined); the node gets cgroup namespaces of its own
 *   and the right to make its cgroup controllers writable (SANDBOX_CGROUPS) and to set its own
 *   firewall (the jobs' of network: cluster). Jobs never get any of this: they run as their
 *   users, inside the sandbox, which drops every capability.
 */
function privileges(node: NodeSpec): Partial<Docker.HostConfig> & { CgroupnsMode?: 'private' } {
  if (!node.fuse && !node.sandbox) return {};
  return {
    ...(node.fuse ? { Devices: [{ PathOnHost: '/dev/fuse', PathInContainer: '/dev/fuse', CgroupPermissions: 'rwm' }] } : {}),
    // A sandboxed node with network: cluster sets up its jobs' firewall in its own network namespace.
    CapAdd: ['SYS_ADMIN', ...(node.sandbox ? ['NET_ADMIN'] : [])],
    SecurityOpt: ['apparmor=unconfined', ...(node.sandbox ? ['seccomp=unconfined'] : [])],
    ...(node.sandbox ? { MaskedPaths: [], ReadonlyPaths: [], CgroupnsMode: 'private' as const } : {}),
  };
}

/**
 * A sandboxed node's first boot step: the engine mounts the node's cgroup controllers read-only;
 * its own (a cgroup namespace of its own) are made writable for the sandbox's pids and memory groups.
 */
const SANDBOX_CGROUPS = 'for c in pids memory; do mount -o remount,bind,rw /sys/fs/cgroup/$c || exit 1; done';

/** Programs of the node's own machinery, left out of `list` (as the local provider leaves out its init). */
const MACHINERY = new Set(['docker-init', 'tini', 'tini-static', 'bash', 'sleep']);

export const networkName = (label: ClusterLabel): string => `sk-${label.name}-${label.id}`;
const volumeName = (label: ClusterLabel, name: string): string => `sk-${label.name}-${label.id}-${name}`;
export const containerName = (label: ClusterLabel, hostname: string): string => `sk-${label.name}-${label.id}-${hostname}`;

function labelsOf(label: ClusterLabel, node?: string): Record<string, string> {
  return { [LABEL.cluster]: label.name, [LABEL.id]: label.id, [LABEL.home]: label.home, ...(node ? { [LABEL.node]: node } : {}) };
}

/** `docker` with the engine slurmkit used, for retry commands a user copies. */
function dockerCli(): string {
  return process.env.DOCKER_HOST ? `docker -H ${process.env.DOCKER_HOST}` : 'docker';
}

/**
 * The node's mounts as the engine takes them. The layout applies mounts in order and may bind
 * a folder from an earlier mount of the node; the engine sorts mounts by depth and takes each
 * target once. So a bind from inside the node resolves to its host source, and a later mount on
 * the same target replaces the earlier one (which is only seen through such binds).
 */
export function engineMounts(mounts: Mount[], volumeName: (name: string) => string): { mounts: Docker.MountSettings[]; tmpfs: Record<string, string> } {
  const applied: Mount[] = [];
  for (const m of mounts) {
    let mount = m;
    if (m.type === 'bind') {
      const from = [...applied].reverse().find((a) => m.source === a.target || m.source.startsWith(`${a.target}/`));
      if (from?.type === 'bind') mount = { ...m, source: from.source + m.source.slice(from.target.length) };
    }
    const same = applied.findIndex((a) => a.target === mount.target);
    if (same >= 0) applied.splice(same, 1);
    applied.push(mount);
  }
  const binds: Docker.MountSettings[] = [];
  // Through HostConfig.Tmpfs, whose options the engine takes as they are: its mounts API makes
  // every tmpfs noexec, and programs run from a node's /tmp (MPI, scripts).
  const tmpfs: Record<string, string> = {};
  for (const m of applied) {
    if (m.type === 'bind') binds.push({ Type: 'bind', Source: m.source, Target: m.target, ReadOnly: m.readOnly ?? false });
    // Empty at first, as the contract says: nothing is copied from the image.
    else if (m.type === 'volume') binds.push({ Type: 'volume', Source: volumeName(m.name), Target: m.target, VolumeOptions: { NoCopy: true } } as Docker.MountSettings);
    else tmpfs[m.target] = [m.readOnly ? 'ro' : 'rw', 'exec', 'nosuid', 'nodev', ...(m.mode ? [`mode=${m.mode}`] : []), ...(m.sizeMiB ? [`size=${m.sizeMiB}m`] : [])].join(',');
  }
  return { mounts: binds, tmpfs };
}

/** Collects a multiplexed (non-TTY) engine stream into stdout and stderr. */
function demux(docker: Docker, stream: NodeJS.ReadableStream, onStdout?: (text: string) => void): { stdout: () => string; stderr: () => string; ended: Promise<void> } {
  const out = new PassThrough();
  const err = new PassThrough();
  const stdout: Buffer[] = [];
  const stderr: Buffer[] = [];
  out.on('data', (c: Buffer) => {
    stdout.push(c);
    onStdout?.(c.toString('utf8'));
  });
  err.on('data', (c: Buffer) => stderr.push(c));
  docker.modem.demuxStream(stream, out, err);
  const ended = new Promise<void>((resolve) => {
    stream.on('end', () => resolve());
    stream.on('close', () => resolve());
    stream.on('error', () => resolve());
  });
  return { stdout: () => Buffer.concat(stdout).toString('utf8'), stderr: () => Buffer.concat(stderr).toString('utf8'), ended };
}

const tail = (text: string, lines = 15): string => text.trimEnd().split('\n').slice(-lines).join('\n');

/** One engine nodes run on: a host of the provider, by name. */
export interface EngineRef {
  /** The host's name (e.g. h1), as the spec and `list-nodes` give it. */
  name: string;
  /** How it is reached, DOCKER_HOST-style, for messages and retry commands. */
  endpoint: string;
  docker: Docker;
}

/**
 * Nodes as containers on one Docker engine (DOCKER_HOST or the default socket): one
 * user-defined network per cluster, one container per node from slurmkit's node image, every
 * one of them labelled with the cluster's label. The swarm provider extends it to several
 * engines: what is per engine here is per host there.
 */
export class DockerProvider implements NodeProvider {
  readonly kind: string = 'docker';
  readonly capabilities: ProviderCapabilities = { scale: true, needsRoot: false, sharesHost: false, sharedVolumes: true, reachesNodes: true };
  /** Every engine nodes may run on; the first holds the cluster network (the swarm's manager). */
  protected engines: EngineRef[];
  private image: Promise<EnsuredImage> | undefined;
  /** Where each node of this process's clusters was found or made, by container name. */
  private readonly placed = new Map<string, EngineRef>();
  /** Hosts whose engine did not answer the last `list`. */
  private lost: string[] = [];

  constructor(engines?: EngineRef[]) {
    this.engines = engines ?? [{ name: 'docker', endpoint: engineEndpoint(), docker: engine() }];
  }

  /** The engine that holds cluster networks. */
  protected get docker(): Docker {
    return this.engines[0]!.docker;
  }

  /** The engine that makes and removes cluster networks (a swarm's manager). */
  protected async manager(): Promise<EngineRef> {
    return this.engines[0]!;
  }

  /** The engine a new node runs on: the host its spec names, else the first. */
  protected engineFor(node: NodeSpec): EngineRef {
    if (node.host === undefined) return this.engines[0]!;
    const found = this.engines.find((e) => e.name === node.host);
    if (!found) throw new SlurmkitError('PRECONDITION', `${node.hostname} is placed on host ${node.host}, which this provider does not have`, { hint: `hosts: ${this.engines.map((e) => e.name).join(', ')}` });
    return found;
  }

  /**
   * Makes sure the engine has the node image (built and imported the first time) with
   * slurmkit's own program in it (added once per version of the program).
   */
  prepare(log?: (line: string) => void): Promise<EnsuredImage> {
    this.image ??= ensureImage(this.docker, defaultRecipe(), log).then((base) => ensureRuntime(this.docker, base, log));
    this.image.catch(() => (this.image = undefined));
    return this.image;
  }

  /**
   * An engine's answer; with engines of several hosts, within HOST_TIMEOUT_MS (a host that is
   * gone must not hold up a command about the others). One engine: as long as it takes.
   */
  protected bounded<T>(e: EngineRef, what: Promise<T>): Promise<T> {
    return this.engines.length > 1 ? answerWithin(e, what) : what;
  }

  /** After `list`: the hosts whose engine did not answer (their nodes are not in the list). */
  lostHosts(): string[] {
    return [...this.lost];
  }

  /** Runs an engine call; an engine that does not answer becomes PRECONDITION with the fix. */
  private async call<T>(what: () => Promise<T>): Promise<T> {
    try {
      return await what();
    } catch (err) {
      if (isUnreachable(err)) throw unreachableError(err);
      throw err;
    }
  }

  async preflight(_req: PreflightRequest): Promise<Check[]> {
    return (await Promise.all(this.engines.map((e) => this.engineChecks(e)))).flat();
  }

  /** Whether one engine answers and has (or can get) the node image. */
  protected async engineChecks(e: EngineRef): Promise<Check[]> {
    const checks: Check[] = [];
    const which_ = this.engines.length > 1 ? ` of ${e.name}` : '';
    try {
      const v = await reachable(e.docker, e.endpoint);
      checks.push({ name: `docker engine${which_}`, ok: true, detail: `${e.endpoint}: Docker ${v.version} (API ${v.apiVersion}), storage driver ${v.storageDriver}` });
    } catch (err) {
      checks.push({
        name: `docker engine${which_}`,
        ok: false,
        detail: (err as Error).message,
        fix: (err as SlurmkitError).hint ?? 'start the Docker engine or set DOCKER_HOST',
      });
      return checks;
    }
    const tag = imageTag(defaultRecipe());
    const inEngine = await e.docker
      .getImage(tag)
      .inspect()
      .then(() => true)
      .catch(() => false);
    const mmdebstrap = await which('mmdebstrap');
    if (e !== this.engines[0]) {
      checks.push({ name: `node image${which_}`, ok: true, detail: inEngine ? `${tag} is in the engine` : `${tag} is loaded from the engine of ${this.engines[0]!.name} on first use` });
      return checks;
    }
    checks.push(
      inEngine
        ? { name: 'node image', ok: true, detail: `${tag} is in the engine` }
        : mmdebstrap
          ? { name: 'node image', ok: true, detail: `${tag} is built with mmdebstrap on first use (1 to 2 minutes), or now with: slurmkit image build` }
          : { name: 'node image', ok: false, detail: `${tag} is not in the engine and mmdebstrap is not installed to build it`, fix: 'apt-get install mmdebstrap' },
    );
    return checks;
  }

  async takenSubnets(): Promise<string[]> {
    const networks = (await Promise.all(this.engines.map((e) => this.call(() => e.docker.listNetworks())))).flat();
    const subnets = networks.flatMap((n) => (n.IPAM?.Config ?? []).map((c) => c.Subnet).filter((s): s is string => !!s && s.includes('.')));
    // The engine's bridges live on this machine when it is local: its routes are taken too.
    const ip = await which('ip');
    if (ip) {
      const routes = JSON.parse((await run(ip, ['-j', '-4', 'route', 'show', 'table', 'all'], { allowFailure: true })).stdout || '[]') as { dst?: string }[];
      subnets.push(...routes.map((r) => r.dst).filter((d): d is string => !!d && d !== 'default' && /^\d+\.\d+\.\d+\.\d+(\/\d+)?$/.test(d)).map((d) => (d.includes('/') ? d : `${d}/32`)));
    }
    return subnets;
  }

  private async networkOf(label: ClusterLabel): Promise<Docker.NetworkInspectInfo | undefined> {
    try {
      const info = (await (await this.manager()).docker.getNetwork(networkName(label)).inspect()) as Docker.NetworkInspectInfo;
      return info.Labels?.[LABEL.id] === label.id ? info : undefined;
    } catch (err) {
      if (statusOf(err) === 404) return undefined;
      throw err;
    }
  }

  async ensureNetwork(req: NetworkRequest): Promise<void> {
    const { label } = req;
    if (await this.call(() => this.networkOf(label))) return;
    try {
      await (await this.manager()).docker.createNetwork(this.networkOptions(req));
    } catch (err) {
      if (isUnreachable(err)) throw unreachableError(err);
      // Made at the same moment by another call for this cluster: that network is this one (the
      // engine may take a moment to show it after it refused the second).
      for (let i = 0; i < 30; i++) {
        if (await this.networkOf(label).catch(() => undefined)) return;
        await sleep(100);
      }
      throw new SlurmkitError('COMMAND_FAILED', `the engine did not create network ${networkName(label)} (${req.subnet}): ${engineMessage(err)}`);
    }
  }

  /** The cluster network: a bridge on the engine. */
  protected networkOptions(req: NetworkRequest): Docker.NetworkCreateOptions {
    return {
      Name: networkName(req.label),
      Driver: 'bridge',
      CheckDuplicate: true,
      Labels: labelsOf(req.label),
      IPAM: { Driver: 'default', Config: [{ Subnet: req.subnet, Gateway: req.gateway }] },
      Options: {
        'com.docker.network.bridge.name': `skd${req.label.id}`,
        // Nodes talk to each other and to this machine only: no address translation to the outside.
        'com.docker.network.bridge.enable_ip_masquerade': 'false',
      },
    };
  }

  /** Before nodes are made on these engines: waits until they can take them (one engine always can). */
  protected async readyToRun(_engines: EngineRef[]): Promise<void> {}

  async createNodes(req: CreateNodesRequest): Promise<void> {
    const { tag } = await this.prepare();
    await mkdir(req.workDir, { recursive: true, mode: 0o700 });
    // Volumes made here with the cluster's label, on each engine whose nodes mount them (an
    // existing one is kept, with its files).
    const volumes = new Map<EngineRef, Set<string>>();
    for (const n of req.nodes) {
      const e = this.engineFor(n);
      for (const m of n.mounts) if (m.type === 'volume') volumes.set(e, (volumes.get(e) ?? new Set()).add(m.name));
    }
    for (const [e, names] of volumes) {
      for (const v of names) await this.call(() => e.docker.createVolume({ Name: volumeName(req.label, v), Labels: labelsOf(req.label) } as Docker.VolumeCreateOptions));
    }
    await this.readyToRun([...new Set(req.nodes.map((n) => this.engineFor(n)))]);
    const made: { name: string; engine: EngineRef }[] = [];
    const failures: string[] = [];
    await Promise.all(
      req.nodes.map(async (node) => {
        try {
          await this.createNode(req, node, tag, made);
        } catch (err) {
          failures.push((err as Error).message);
        }
      }),
    );
    if (failures.length > 0) {
      await Promise.all(made.map((m) => m.engine.docker.getContainer(m.name).remove({ force: true }).catch(() => undefined)));
      throw new SlurmkitError('COMMAND_FAILED', failures.sort().join('\n'));
    }
  }

  private async createNode(req: CreateNodesRequest, node: NodeSpec, tag: string, made: { name: string; engine: EngineRef }[]): Promise<void> {
    const { label, network } = req;
    const name = containerName(label, node.hostname);
    const e = this.engineFor(node);
    const docker = e.docker;
    // Gone from wherever it ran before: a node placed elsewhere now must not run twice.
    const earlier = await this.find(label, node.hostname).catch(() => undefined);
    if (earlier && earlier !== e) await earlier.docker.getContainer(name).remove({ force: true }).catch(() => undefined);
    const mounts = engineMounts(node.mounts, (v) => volumeName(label, v));
    const options: Docker.ContainerCreateOptions = {
      name,
      Image: tag,
      Hostname: node.hostname,
      Labels: labelsOf(label, node.hostname),
      Env: [`PATH=${NODE_PATH}`],
      Cmd: ['bash', '-c', MAIN],
      ...(this.capabilities.reachesNodes || !node.ports?.length ? {} : { ExposedPorts: Object.fromEntries(node.ports.map((p) => [`${p}/tcp`, {}])) }),
      HostConfig: {
        Init: true,
        NetworkMode: networkName(label),
        // Names the cluster does not know go nowhere (the engine would ask the host's servers).
        Dns: [network.gateway],
        Mounts: mounts.mounts,
        Tmpfs: mounts.tmpfs,
        ...privileges(node),
        RestartPolicy: { Name: 'no' },
        // Where this machine cannot reach the cluster network: those ports on the host, at a port the engine picks.
        ...(this.capabilities.reachesNodes || !node.ports?.length ? {} : { PortBindings: Object.fromEntries(node.ports.map((p) => [`${p}/tcp`, [{ HostPort: '' }]])) }),
      },
      NetworkingConfig: {
        EndpointsConfig: { [networkName(label)]: { IPAMConfig: { IPv4Address: node.address }, Aliases: [node.hostname] } },
      },
    };
    let container: Docker.Container;
    try {
      container = await this.call(() => docker.createContainer(options));
    } catch (err) {
      if (err instanceof SlurmkitError) throw err;
      if (statusOf(err) !== 409) throw new Error(`${node.hostname}: the engine${this.engines.length > 1 ? ` of ${e.name}` : ''} did not create its container: ${engineMessage(err)}`);
      // A container of this cluster left from an earlier boot of this node: it goes.
      await docker.getContainer(name).remove({ force: true });
      container = await docker.createContainer(options);
    }
    made.push({ name, engine: e });
    this.placed.set(name, e);
    // The node's files wait in its own layer, root's only, until the boot installs them after the mounts.
    const staged = (node.files ?? []).map((f, i) => ({ path: `${FILES_DIR}/${i}`, content: f.content, mode: 0o600 }));
    const boot = `${node.sandbox ? `${SANDBOX_CGROUPS}\n` : ''}${installFilesScript(node.files, FILES_DIR)}\n${node.boot}\n`;
    await container.putArchive(await packTar([{ path: BOOT_FILE, content: boot, mode: 0o700 }, ...staged].map((f) => ({ name: f.path.replace(/^\/+/, ''), mode: f.mode, content: f.content }))), { path: '/' });
    let console_ = '';
    let sawReady!: () => void;
    const ready = new Promise<void>((resolve) => (sawReady = resolve));
    const attached = await container.attach({ stream: true, stdout: true, stderr: true });
    const streams = demux(docker, attached, (text) => {
      console_ += text;
      if (console_.includes(READY)) sawReady();
    });
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), req.timeoutMs)));
    try {
      await container.start();
      const outcome = await Promise.race([ready.then(() => 'ready' as const), streams.ended.then(() => 'exited' as const), timedOut]);
      const text = `${streams.stdout()}${streams.stderr()}`;
      await writeFile(node.consoleLog, text, { mode: 0o600 }).catch(() => undefined);
      if (outcome === 'ready') return;
      const reason = outcome === 'timeout' ? `did not finish booting within ${req.timeoutMs} ms` : 'failed to boot';
      throw new Error(`${node.hostname} ${reason}:\n${tail(text)}`);
    } finally {
      clearTimeout(timer);
      (attached as unknown as Duplex).destroy?.();
    }
  }

  async destroyNodes(label: ClusterLabel, hostnames: string[], opts: { graceMs?: number } = {}): Promise<void> {
    const grace = Math.ceil((opts.graceMs ?? 10_000) / 1000);
    await Promise.all(
      hostnames.map(async (hostname) => {
        const e = await this.find(label, hostname);
        if (!e) return;
        const container = e.docker.getContainer(containerName(label, hostname));
        try {
          if (grace > 0) await this.call(() => container.stop({ t: grace }));
        } catch (err) {
          if (err instanceof SlurmkitError) throw err;
          if (statusOf(err) === 404) return;
          // 304: not running; it is removed below.
        }
        try {
          await container.remove({ force: true });
        } catch (err) {
          if (statusOf(err) !== 404) throw new SlurmkitError('COMMAND_FAILED', `could not remove ${containerName(label, hostname)}: ${engineMessage(err)}`);
        }
      }),
    );
  }

  /**
   * The engine that holds a node's container (running or not), if any: where this process put
   * it, else the one engine that has it.
   */
  protected async find(label: ClusterLabel, hostname: string): Promise<EngineRef | undefined> {
    const name = containerName(label, hostname);
    const known = this.placed.get(name);
    if (known) return known;
    if (this.engines.length === 1) return this.engines[0];
    // The first engine that has it: a host that does not answer must not hold up the others' nodes.
    const found = await new Promise<EngineRef | undefined>((resolve) => {
      let left = this.engines.length;
      for (const e of this.engines) {
        this.bounded(e, e.docker.getContainer(name).inspect())
          .then((info) => info.Config.Labels?.[LABEL.id] === label.id && resolve(e))
          .catch(() => undefined)
          .finally(() => --left === 0 && resolve(undefined));
      }
    });
    if (found) this.placed.set(name, found);
    return found;
  }

  /** The running container of a node of this cluster, or NOT_FOUND. */
  private async running(label: ClusterLabel, node: string): Promise<{ container: Docker.Container; docker: Docker }> {
    const notFound = () => new SlurmkitError('NOT_FOUND', `node ${node} of cluster ${label.name} is not running`);
    const e = await this.call(() => this.find(label, node));
    if (!e) throw notFound();
    const container = e.docker.getContainer(containerName(label, node));
    try {
      const info = await this.bounded(e, container.inspect());
      if (!info.State.Running || info.Config.Labels?.[LABEL.id] !== label.id) throw notFound();
    } catch (err) {
      if (err instanceof SlurmkitError) throw err;
      if (isUnreachable(err)) throw unreachableError(err);
      if (statusOf(err) === 404) throw notFound();
      throw err;
    }
    return { container, docker: e.docker };
  }

  async exec(req: ExecRequest): Promise<ExecResult> {
    const { container, docker } = await this.running(req.label, req.node);
    const interactive = req.stdio === 'inherit';
    const tty = interactive && process.stdin.isTTY === true && process.stdout.isTTY === true;
    const withInput = req.input !== undefined || interactive;
    // The user is looked up inside the node: the engine reads the image's /etc/passwd, not the
    // cluster's that the node sees.
    const asUser = !req.user || req.user === 'root' || req.user === '0'
      ? []
      : /^\d+$/.test(req.user)
        ? ['setpriv', `--reuid=${req.user}`, `--regid=${req.user}`, '--clear-groups', '--']
        : ['runuser', '-u', req.user, '--'];
    const env = { HOME: '/root', LANG: 'C.UTF-8', TERM: process.env.TERM ?? 'xterm', ...req.env };
    const exec = await container.exec({
      Cmd: [...asUser, ...req.command],
      Env: [`PATH=${NODE_PATH}`, ...Object.entries(env).map(([k, v]) => `${k}=${v}`)],
      ...(req.cwd ? { WorkingDir: req.cwd } : {}),
      User: 'root',
      AttachStdin: withInput,
      AttachStdout: true,
      AttachStderr: true,
      Tty: tty,
    });
    const stream = (await exec.start({ hijack: true, stdin: withInput, Tty: tty })) as unknown as Duplex;
    let result: { stdout: () => string; stderr: () => string; ended: Promise<void> };
    if (interactive) {
      let restore = () => undefined as void;
      if (tty) {
        process.stdin.setRawMode(true);
        restore = () => void process.stdin.setRawMode(false);
        const resize = () => void exec.resize({ h: process.stdout.rows, w: process.stdout.columns }).catch(() => undefined);
        resize();
        process.stdout.on('resize', resize);
        stream.on('end', () => process.stdout.off('resize', resize));
        stream.pipe(process.stdout);
      } else {
        docker.modem.demuxStream(stream, process.stdout, process.stderr);
      }
      process.stdin.pipe(stream);
      const ended = new Promise<void>((resolve) => {
        stream.on('end', resolve);
        stream.on('close', resolve);
      });
      result = { stdout: () => '', stderr: () => '', ended };
      await ended;
      process.stdin.unpipe(stream);
      process.stdin.pause();
      restore();
    } else {
      result = demux(docker, stream);
      if (req.input !== undefined) stream.end(req.input);
      await result.ended;
    }
    const info = await exec.inspect();
    return { exitCode: info.ExitCode ?? 1, stdout: result.stdout(), stderr: result.stderr() };
  }

  async open(req: OpenRequest): Promise<NodeProcess> {
    const { container, docker } = await this.running(req.label, req.node);
    const env = { HOME: '/root', LANG: 'C.UTF-8', ...req.env };
    // The engine does not end an exec whose connection closes: the command's pid, its first line
    // on stderr, is what close() kills.
    const exec = await container.exec({
      Cmd: ['sh', '-c', 'echo "$$" >&2; exec "$@"', 'sh', ...req.command],
      Env: [`PATH=${NODE_PATH}`, ...Object.entries(env).map(([k, v]) => `${k}=${v}`)],
      User: 'root',
      AttachStdin: true,
      AttachStdout: true,
      AttachStderr: true,
      Tty: false,
    });
    const stream = (await exec.start({ hijack: true, stdin: true })) as unknown as Duplex;
    const stdout = new PassThrough();
    const stderr = new PassThrough();
    let tail = '';
    let pid: string | undefined;
    let pidKnown: (pid: string | undefined) => void = () => undefined;
    const known = new Promise<string | undefined>((resolve) => (pidKnown = resolve));
    stderr.on('data', (c: Buffer) => {
      tail += c.toString();
      if (pid === undefined && tail.includes('\n')) {
        pid = tail.slice(0, tail.indexOf('\n')).trim();
        tail = tail.slice(tail.indexOf('\n') + 1);
        pidKnown(/^\d+$/.test(pid) ? pid : undefined);
      }
      tail = tail.slice(-4096);
    });
    docker.modem.demuxStream(stream, stdout, stderr);
    stream.on('error', () => undefined);
    const ended = new Promise<void>((resolve) => {
      stream.once('end', resolve);
      stream.once('close', resolve);
    });
    void ended.then(() => pidKnown(undefined));
    let closing: Promise<void> | undefined;
    const close = (): Promise<void> =>
      (closing ??= (async () => {
        const target = await Promise.race([known, sleep(5_000).then(() => undefined)]);
        stream.destroy();
        if (!target) return;
        const kill = await container.exec({ Cmd: ['kill', '-KILL', target], User: 'root', AttachStdout: true, AttachStderr: true });
        const out = (await kill.start({ hijack: true, stdin: false })) as unknown as Duplex;
        out.resume();
        await new Promise<void>((resolve) => {
          out.once('end', resolve);
          out.once('close', resolve);
          out.once('error', () => resolve());
        });
      })().catch(() => undefined));
    const exited = ended.then(async () => {
      await closing;
      stdout.end();
      const info = await exec.inspect().catch(() => undefined);
      // Closed by us, or by the engine while it still ran: not an exit code of its own.
      return info?.Running === false && typeof info.ExitCode === 'number' ? info.ExitCode : 137;
    });
    // Only stdin goes this way: the hijacked stream is a duplex whose writes are the process's input.
    const stdin = new PassThrough();
    stdin.pipe(stream);
    const socket = stream as unknown as { ref?: () => void; unref?: () => void };
    return {
      stdin,
      stdout,
      exited,
      stderrTail: () => tail,
      close: () => void close(),
      hold: (keep) => void (keep ? socket.ref?.() : socket.unref?.()),
    };
  }

  async reach(_label: ClusterLabel, _hostname: string, address: string, port: number): Promise<{ address: string; port: number }> {
    return { address, port };
  }

  async list(label: ClusterLabel): Promise<NodeStatus[]> {
    const lost: string[] = [];
    const perEngine = await Promise.all(
      this.engines.map(async (e) => {
        const listed = this.call(() => this.bounded(e, e.docker.listContainers({ all: true, filters: { label: [`${LABEL.id}=${label.id}`] } })));
        // Of several hosts, one that does not answer leaves its nodes out (lostHosts names it); one engine's silence is an error.
        const containers = this.engines.length > 1 ? await listed.catch(() => (lost.push(e.name), [])) : await listed;
        return containers.map((c) => ({ c, e }));
      }),
    );
    this.lost = lost;
    return Promise.all(
      perEngine.flat().map(async ({ c, e }): Promise<NodeStatus> => {
        const hostname = c.Labels[LABEL.node] ?? c.Names[0] ?? c.Id;
        const container = e.docker.getContainer(c.Id);
        const info = await this.bounded(e, container.inspect()).catch(() => undefined);
        const running = info?.State.Running === true;
        let processes: string[] = [];
        if (running) {
          const top = (await this.bounded(e, container.top({ ps_args: '-o pid,comm' })).catch(() => undefined)) as { Titles: string[]; Processes: string[][] } | undefined;
          const col = top?.Titles.findIndex((t) => t === 'COMMAND') ?? -1;
          processes = [...new Set((top?.Processes ?? []).map((p) => p[col] ?? '').filter((p) => p && !MACHINERY.has(p)))].sort();
        }
        return { hostname, pid: running ? info?.State.Pid : undefined, running, processes, ...(this.engines.length > 1 ? { host: e.name } : {}) };
      }),
    );
  }

  async removeByLabel(select: LabelSelector): Promise<LeftoverReport> {
    const report: LeftoverReport = { found: [], removed: [], failed: [] };
    const filter = 'id' in select ? `${LABEL.id}=${select.id}` : `${LABEL.home}=${select.home}`;
    const chosen = (labels: Record<string, string> | undefined): boolean =>
      'id' in select || (!select.keepIds.includes(labels?.[LABEL.id] ?? '') && !select.keepNames.includes(labels?.[LABEL.cluster] ?? ''));
    const several = this.engines.length > 1;
    const on = (e: EngineRef) => (several ? ` on ${e.name}` : '');
    const cli = (e: EngineRef) => (several ? `docker -H ${e.endpoint}` : dockerCli());
    const remove = async (resource: string, retry: string, fn: () => Promise<unknown>) => {
      report.found.push(resource);
      try {
        await fn();
        report.removed.push(resource);
      } catch (err) {
        if (statusOf(err) === 404) report.removed.push(resource);
        else report.failed.push({ resource, error: engineMessage(err), retry });
      }
    };
    const found = await Promise.all(
      this.engines.map(async (e) => {
        try {
          const [containers, networks, volumes] = await this.bounded(
            e,
            Promise.all([
              e.docker.listContainers({ all: true, filters: { label: [filter] } }),
              e.docker.listNetworks({ filters: { label: [filter] } }),
              e.docker.listVolumes({ filters: { label: [filter] } }).then((v) => (v.Volumes ?? []) as { Name: string; Labels: Record<string, string> }[]),
            ]),
          );
          return { e, containers, networks, volumes };
        } catch (err) {
          // No engine, nothing of a cluster to find in it; a cluster's own `down` says so, `gc` goes on.
          if ('id' in select) report.failed.push({ resource: `Docker engine${on(e)} at ${e.endpoint}`, error: (err as Error).message, retry: `${cli(e)} info` });
          return undefined;
        }
      }),
    );
    const engines = found.filter((f) => f !== undefined);
    // Containers first, on every engine: a network goes only once nothing is attached to it.
    await Promise.all(
      engines.flatMap(({ e, containers }) =>
        containers
          .filter((c) => chosen(c.Labels))
          .map((c) => {
            const name = (c.Names[0] ?? c.Id).replace(/^\//, '');
            return remove(`container ${name}${on(e)}`, `${cli(e)} rm -f ${name}`, () => e.docker.getContainer(c.Id).remove({ force: true, v: true }));
          }),
      ),
    );
    // A swarm-wide network is seen from every engine a node used, and removed once, by the manager.
    const seen = new Set<string>();
    for (const { e, networks } of engines) {
      for (const n of networks.filter((x) => chosen(x.Labels))) {
        if (seen.has(n.Id)) continue;
        seen.add(n.Id);
        const by = n.Scope === 'swarm' ? await this.manager().catch(() => e) : e;
        await remove(`network ${n.Name}${n.Scope === 'swarm' ? '' : on(e)}`, `${cli(by)} network rm ${n.Name}`, async () => {
          await this.removeNetwork(by.docker, n.Id);
          // The manager removes a swarm's network from its hosts after it answers: done when no engine has it.
          if (n.Scope === 'swarm') await this.gone(n.Id, n.Name);
        });
      }
    }
    if (!('keepVolumes' in select && select.keepVolumes)) {
      for (const { e, volumes } of engines) {
        for (const v of volumes.filter((x) => chosen(x.Labels))) {
          await remove(`volume ${v.Name}${on(e)}`, `${cli(e)} volume rm ${v.Name}`, () => e.docker.getVolume(v.Name).remove());
        }
      }
    }
    return report;
  }

  /** Waits (up to 15 s) until no engine lists the network any more. */
  private async gone(id: string, name: string): Promise<void> {
    for (let i = 0; i < 150; i++) {
      const still = await Promise.all(this.engines.map((e) => e.docker.getNetwork(id).inspect().then(() => e.name, (err: unknown) => (statusOf(err) === 404 || isUnreachable(err) ? undefined : e.name))));
      const left = still.filter((x) => x !== undefined);
      if (left.length === 0) return;
      if (i === 149) throw new Error(`network ${name} is still on ${left.join(', ')} 15 s after the swarm's manager removed it`);
      await sleep(100);
    }
  }

  /** Removes a network, waiting (up to 15 s) for endpoints of just removed containers to go (on other hosts, they leave late). */
  private async removeNetwork(docker: Docker, id: string): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      try {
        await docker.getNetwork(id).remove();
        return;
      } catch (err) {
        // A swarm releases a removed container's attachment to its overlay network (a task) a moment later.
        if (statusOf(err) === 404 || attempt >= 150 || !/active endpoints|in use by task/i.test(engineMessage(err))) throw err;
        await sleep(100);
      }
    }
  }
}
