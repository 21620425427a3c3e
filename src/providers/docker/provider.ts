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
  NodeStatus,
  PreflightRequest,
} from '../types.js';
import { SlurmkitError } from '../../util/errors.js';
import { packTar } from '../../util/tar.js';
import { run, sleep, which } from '../../util/run.js';
import { LABEL, engine, engineEndpoint, engineMessage, isUnreachable, reachable, statusOf, unreachableError } from './engine.js';
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
/** Programs of the node's own machinery, left out of `list` (as the local provider leaves out its init). */
const MACHINERY = new Set(['docker-init', 'tini', 'tini-static', 'bash', 'sleep']);

const networkName = (label: ClusterLabel): string => `sk-${label.name}-${label.id}`;
const volumeName = (label: ClusterLabel, name: string): string => `sk-${label.name}-${label.id}-${name}`;
const containerName = (label: ClusterLabel, hostname: string): string => `sk-${label.name}-${label.id}-${hostname}`;

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

/**
 * Nodes as containers on one Docker engine (DOCKER_HOST or the default socket): one
 * user-defined network per cluster, one container per node from slurmkit's node image, every
 * one of them labelled with the cluster's label.
 */
export class DockerProvider implements NodeProvider {
  readonly kind = 'docker';
  readonly capabilities = { scale: true, needsRoot: false, sharesHost: false };
  private readonly docker = engine();
  private image: Promise<EnsuredImage> | undefined;

  /**
   * Makes sure the engine has the node image (built and imported the first time) with
   * slurmkit's own program in it (added once per version of the program).
   */
  prepare(log?: (line: string) => void): Promise<EnsuredImage> {
    this.image ??= ensureImage(this.docker, defaultRecipe(), log).then((base) => ensureRuntime(this.docker, base, log));
    this.image.catch(() => (this.image = undefined));
    return this.image;
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
    const checks: Check[] = [];
    try {
      const v = await reachable(this.docker);
      checks.push({ name: 'docker engine', ok: true, detail: `${engineEndpoint()}: Docker ${v.version} (API ${v.apiVersion}), storage driver ${v.storageDriver}` });
    } catch (err) {
      checks.push({
        name: 'docker engine',
        ok: false,
        detail: (err as Error).message,
        fix: (err as SlurmkitError).hint ?? 'start the Docker engine or set DOCKER_HOST',
      });
      return checks;
    }
    const tag = imageTag(defaultRecipe());
    const inEngine = await this.docker
      .getImage(tag)
      .inspect()
      .then(() => true)
      .catch(() => false);
    const mmdebstrap = await which('mmdebstrap');
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
    const networks = await this.call(() => this.docker.listNetworks());
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
      const info = (await this.docker.getNetwork(networkName(label)).inspect()) as Docker.NetworkInspectInfo;
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
      await this.docker.createNetwork({
        Name: networkName(label),
        Driver: 'bridge',
        CheckDuplicate: true,
        Labels: labelsOf(label),
        IPAM: { Driver: 'default', Config: [{ Subnet: req.subnet, Gateway: req.gateway }] },
        Options: {
          'com.docker.network.bridge.name': `skd${label.id}`,
          // Nodes talk to each other and to this machine only: no address translation to the outside.
          'com.docker.network.bridge.enable_ip_masquerade': 'false',
        },
      });
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

  async createNodes(req: CreateNodesRequest): Promise<void> {
    const { tag } = await this.prepare();
    await mkdir(req.workDir, { recursive: true, mode: 0o700 });
    // Volumes made here with the cluster's label (an existing one is kept, with its files).
    const volumes = new Set(req.nodes.flatMap((n) => n.mounts.flatMap((m) => (m.type === 'volume' ? [m.name] : []))));
    for (const v of volumes) {
      await this.call(() => this.docker.createVolume({ Name: volumeName(req.label, v), Labels: labelsOf(req.label) } as Docker.VolumeCreateOptions));
    }
    const made: string[] = [];
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
      await Promise.all(made.map((name) => this.docker.getContainer(name).remove({ force: true }).catch(() => undefined)));
      throw new SlurmkitError('COMMAND_FAILED', failures.sort().join('\n'));
    }
  }

  private async createNode(req: CreateNodesRequest, node: NodeSpec, tag: string, made: string[]): Promise<void> {
    const { label, network } = req;
    const name = containerName(label, node.hostname);
    const mounts = engineMounts(node.mounts, (v) => volumeName(label, v));
    const options: Docker.ContainerCreateOptions = {
      name,
      Image: tag,
      Hostname: node.hostname,
      Labels: labelsOf(label, node.hostname),
      Env: [`PATH=${NODE_PATH}`],
      Cmd: ['bash', '-c', MAIN],
      HostConfig: {
        Init: true,
        NetworkMode: networkName(label),
        // Names the cluster does not know go nowhere (the engine would ask the host's servers).
        Dns: [network.gateway],
        Mounts: mounts.mounts,
        Tmpfs: mounts.tmpfs,
        RestartPolicy: { Name: 'no' },
      },
      NetworkingConfig: {
        EndpointsConfig: { [networkName(label)]: { IPAMConfig: { IPv4Address: node.address }, Aliases: [node.hostname] } },
      },
    };
    let container: Docker.Container;
    try {
      container = await this.call(() => this.docker.createContainer(options));
    } catch (err) {
      if (statusOf(err) !== 409) throw new Error(`${node.hostname}: the engine did not create its container: ${engineMessage(err)}`);
      // A container of this cluster left from an earlier boot of this node: it goes.
      await this.docker.getContainer(name).remove({ force: true });
      container = await this.docker.createContainer(options);
    }
    made.push(name);
    // The node's files wait in its own layer, root's only, until the boot installs them after the mounts.
    const staged = (node.files ?? []).map((f, i) => ({ path: `${FILES_DIR}/${i}`, content: f.content, mode: 0o600 }));
    const boot = `${installFilesScript(node.files, FILES_DIR)}\n${node.boot}\n`;
    await container.putArchive(await packTar([{ path: BOOT_FILE, content: boot, mode: 0o700 }, ...staged].map((f) => ({ name: f.path.replace(/^\/+/, ''), mode: f.mode, content: f.content }))), { path: '/' });
    let console_ = '';
    let sawReady!: () => void;
    const ready = new Promise<void>((resolve) => (sawReady = resolve));
    const attached = await container.attach({ stream: true, stdout: true, stderr: true });
    const streams = demux(this.docker, attached, (text) => {
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
        const container = this.docker.getContainer(containerName(label, hostname));
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

  /** The running container of a node of this cluster, or NOT_FOUND. */
  private async running(label: ClusterLabel, node: string): Promise<Docker.Container> {
    const container = this.docker.getContainer(containerName(label, node));
    const notFound = () => new SlurmkitError('NOT_FOUND', `node ${node} of cluster ${label.name} is not running`);
    try {
      const info = await container.inspect();
      if (!info.State.Running || info.Config.Labels?.[LABEL.id] !== label.id) throw notFound();
    } catch (err) {
      if (err instanceof SlurmkitError) throw err;
      if (isUnreachable(err)) throw unreachableError(err);
      if (statusOf(err) === 404) throw notFound();
      throw err;
    }
    return container;
  }

  async exec(req: ExecRequest): Promise<ExecResult> {
    const container = await this.running(req.label, req.node);
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
        this.docker.modem.demuxStream(stream, process.stdout, process.stderr);
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
      result = demux(this.docker, stream);
      if (req.input !== undefined) stream.end(req.input);
      await result.ended;
    }
    const info = await exec.inspect();
    return { exitCode: info.ExitCode ?? 1, stdout: result.stdout(), stderr: result.stderr() };
  }

  async list(label: ClusterLabel): Promise<NodeStatus[]> {
    const containers = await this.call(() => this.docker.listContainers({ all: true, filters: { label: [`${LABEL.id}=${label.id}`] } }));
    return Promise.all(
      containers.map(async (c): Promise<NodeStatus> => {
        const hostname = c.Labels[LABEL.node] ?? c.Names[0] ?? c.Id;
        const container = this.docker.getContainer(c.Id);
        const info = await container.inspect().catch(() => undefined);
        const running = info?.State.Running === true;
        let processes: string[] = [];
        if (running) {
          const top = (await container.top({ ps_args: '-o pid,comm' }).catch(() => undefined)) as { Titles: string[]; Processes: string[][] } | undefined;
          const col = top?.Titles.findIndex((t) => t === 'COMMAND') ?? -1;
          processes = [...new Set((top?.Processes ?? []).map((p) => p[col] ?? '').filter((p) => p && !MACHINERY.has(p)))].sort();
        }
        return { hostname, pid: running ? info?.State.Pid : undefined, running, processes };
      }),
    );
  }

  async removeByLabel(select: LabelSelector): Promise<LeftoverReport> {
    const report: LeftoverReport = { found: [], removed: [], failed: [] };
    const filter = 'id' in select ? `${LABEL.id}=${select.id}` : `${LABEL.home}=${select.home}`;
    const chosen = (labels: Record<string, string> | undefined): boolean =>
      'id' in select || (!select.keepIds.includes(labels?.[LABEL.id] ?? '') && !select.keepNames.includes(labels?.[LABEL.cluster] ?? ''));
    let containers: Docker.ContainerInfo[];
    let networks: Docker.NetworkInspectInfo[];
    let volumes: { Name: string; Labels: Record<string, string> }[];
    try {
      [containers, networks, volumes] = await Promise.all([
        this.docker.listContainers({ all: true, filters: { label: [filter] } }),
        this.docker.listNetworks({ filters: { label: [filter] } }),
        this.docker.listVolumes({ filters: { label: [filter] } }).then((v) => (v.Volumes ?? []) as { Name: string; Labels: Record<string, string> }[]),
      ]);
    } catch (err) {
      // No engine, nothing of a cluster to find in it; a cluster's own `down` says so, `gc` goes on.
      if ('id' in select) {
        report.failed.push({ resource: `Docker engine at ${engineEndpoint()}`, error: (err as Error).message, retry: `${dockerCli()} info` });
      }
      return report;
    }
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
    await Promise.all(
      containers
        .filter((c) => chosen(c.Labels))
        .map((c) => {
          const name = (c.Names[0] ?? c.Id).replace(/^\//, '');
          return remove(`container ${name}`, `${dockerCli()} rm -f ${name}`, () => this.docker.getContainer(c.Id).remove({ force: true, v: true }));
        }),
    );
    for (const n of networks.filter((x) => chosen(x.Labels))) {
      await remove(`network ${n.Name}`, `${dockerCli()} network rm ${n.Name}`, () => this.docker.getNetwork(n.Id).remove());
    }
    for (const v of volumes.filter((x) => chosen(x.Labels) && !('keepVolumes' in select && select.keepVolumes))) {
      await remove(`volume ${v.Name}`, `${dockerCli()} volume rm ${v.Name}`, () => this.docker.getVolume(v.Name).remove());
    }
    return report;
  }
}
