import { createReadStream, existsSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import { SlurmkitError } from '../util/errors.js';
import { sleep } from '../util/run.js';
import { jupyterEndpoints, loginOf } from './login.js';
import { ClusterPaths } from './paths.js';
import { agentLog, runningAgent } from './agent-process.js';
import { headOf, labelOf, providerFor, slurmNodes } from './nodes.js';
import { listClusterEntries, requireState, type ClusterState, type ScaleEvent } from './state.js';

export interface NodeView {
  name: string;
  role: 'head' | 'worker' | 'login';
  address: string;
  /** The host it runs on (where it was found, else where it was placed), for providers of several hosts; else null. */
  host: string | null;
  /** The node's namespaces exist (its init runs). */
  running: boolean;
  pid: number | null;
  processes: string[];
  /** Slurm's state for workers (idle, alloc, down, ...), null when slurmctld does not answer. */
  slurmState: string | null;
  /** Why it does not work: its host does not answer, else Slurm's reason for a node down or drained. */
  reason: string | null;
  /** Autoscaled workers: on, off (powered down: not made), powering-up or powering-down; null for the others. */
  power: string | null;
}

export interface ClusterView {
  name: string;
  id: string;
  provider: string;
  /** The state's phase, or "broken" when the state cannot be used (see error and fix). */
  phase: string;
  subnet: string;
  nodes: { total: number; running: number; idle: number };
  createdAt: string;
  folder: string;
  /** Why the state cannot be used, and how to fix it; only when phase is broken. */
  error?: string;
  fix?: string;
}

export async function listNodes(name: string): Promise<NodeView[]> {
  const state = await requireState(name);
  return nodeViews(state);
}

async function nodeViews(state: ClusterState): Promise<NodeView[]> {
  const provider = providerFor(state);
  const live = new Map((await provider.list(labelOf(state))).map((n) => [n.hostname, n]));
  const lost = new Set(provider.lostHosts?.() ?? []);
  const slurm = live.get(headOf(state).name)?.running ? await slurmNodes(state) : undefined;
  const slurmBy = new Map((slurm ?? []).map((n) => [n.name, n]));
  // Autoscaled nodes not made now are listed too, in node order: they are part of the cluster, powered down.
  const cloud = new Set((state.cloud ?? []).map((n) => n.name));
  const all = [...state.nodes, ...(state.cloud ?? []).filter((c) => !state.nodes.some((n) => n.name === c.name))].sort((a, b) => a.index - b.index);
  return all.map((n) => {
    const l = live.get(n.name);
    const s = slurmBy.get(n.name);
    return {
      name: n.name,
      role: n.role,
      address: n.address,
      host: l?.host ?? n.host ?? null,
      running: l?.running ?? false,
      pid: l?.pid ?? null,
      processes: l?.processes ?? [],
      slurmState: n.role !== 'worker' ? null : s ? `${s.state}${s.notResponding ? '*' : ''}` : null,
      reason: n.host && lost.has(n.host) ? `host ${n.host} does not answer` : (s?.reason ?? null),
      power: cloud.has(n.name) ? (s?.power ?? (s ? 'on' : l?.running ? 'on' : 'off')) : null,
    };
  });
}

export async function clusterView(state: ClusterState): Promise<ClusterView> {
  const nodes = await nodeViews(state);
  return {
    name: state.name,
    id: state.id,
    provider: state.provider,
    phase: state.phase,
    subnet: state.network.subnet,
    nodes: {
      total: nodes.length,
      running: nodes.filter((n) => n.running).length,
      idle: nodes.filter((n) => n.slurmState === 'idle').length,
    },
    createdAt: state.createdAt,
    folder: ClusterPaths.of(state.name).root,
  };
}

/** Every cluster folder; one whose state cannot be used is listed as broken, with why and the fix. */
export async function listClusters(): Promise<ClusterView[]> {
  return Promise.all(
    (await listClusterEntries()).map((e) =>
      e.state
        ? clusterView(e.state)
        : {
            name: e.name,
            id: '',
            provider: '',
            phase: 'broken',
            subnet: '',
            nodes: { total: 0, running: 0, idle: 0 },
            createdAt: '',
            folder: ClusterPaths.of(e.name).root,
            error: e.error.message,
            ...(e.error.hint ? { fix: e.error.hint } : {}),
          },
    ),
  );
}

/** The autoscaling agent of a cluster that autoscales: whether it runs, and where it logs. */
export interface AgentView {
  running: boolean;
  pid: number | null;
  log: string;
}

/** The login node, and where each user's Jupyter server listens (the token: `slurmkit jupyter`). */
export interface LoginView {
  node: string;
  address: string;
  jupyter: { user: string; port: number }[];
}

function loginView(state: ClusterState): LoginView | null {
  const login = loginOf(state);
  return login ? { node: login.name, address: login.address, jupyter: jupyterEndpoints(state).map(({ user, port }) => ({ user, port })) } : null;
}

export async function showCluster(name: string): Promise<ClusterView & { nodeList: NodeView[]; timings: ClusterState['timings']; scaleEvents: ScaleEvent[]; agent: AgentView | null; login: LoginView | null }> {
  const state = await requireState(name);
  const pid = state.cloud?.length ? runningAgent(name) : undefined;
  return {
    ...(await clusterView(state)),
    nodeList: await nodeViews(state),
    timings: state.timings,
    scaleEvents: state.scaleEvents ?? [],
    agent: state.cloud?.length ? { running: pid !== undefined, pid: pid ?? null, log: agentLog(name) } : null,
    login: loginView(state),
  };
}

export const DAEMONS = ['slurmctld', 'slurmd', 'munged', 'slurmdbd', 'mariadb', 'slurmrestd', 'azurite', 'console', 'agent', 'power'] as const;
export type Daemon = (typeof DAEMONS)[number];

/** Where the nodes write their logs, when they do not see the cluster folder (a volume of the cluster). */
export const NODE_LOGS = '/var/log/slurm';

/**
 * A daemon's log: a file on this machine (the local provider's nodes write into the cluster
 * folder; consoles are kept by the provider), or a file in the logs volume of a cluster whose
 * nodes do not share this machine, read through a running node.
 */
export interface LogSource {
  /** For messages: the file as a user would look for it. */
  where: string;
  /** The file's size and its bytes from `from` on (all without), or undefined when there is no such file yet. */
  read(from?: number): Promise<{ size: number; data: Buffer } | undefined>;
}

export async function logSource(name: string, node?: string, daemon?: Daemon): Promise<LogSource> {
  const state = await requireState(name);
  const paths = ClusterPaths.of(name);
  const nodeRec = node ? state.nodes.find((n) => n.name === node) : headOf(state);
  if (!nodeRec) {
    throw new SlurmkitError('NOT_FOUND', `cluster ${name} has no node "${node}"`, {
      hint: `nodes: ${state.nodes.map((n) => n.name).join(', ')}`,
    });
  }
  const d: Daemon = daemon ?? (nodeRec.role === 'head' ? 'slurmctld' : 'slurmd');
  // The autoscaling agent runs on this machine and logs into the cluster folder.
  if (d === 'agent') {
    if (!state.cloud?.length) throw new SlurmkitError('USAGE', `cluster ${name} does not autoscale, so it has no agent`, { hint: 'add autoscale to a node group of its spec' });
    return hostFile(agentLog(name));
  }
  const provider = providerFor(state);
  // Workers that do not share this machine run a munged of their own.
  const ownMunged = !provider.capabilities.sharesHost;
  const headOnly = d === 'slurmctld' || d === 'power' || d === 'slurmdbd' || d === 'mariadb' || d === 'slurmrestd' || d === 'azurite' || (d === 'munged' && !ownMunged);
  if (headOnly && nodeRec.role !== 'head') {
    throw new SlurmkitError('USAGE', `${d} runs on the head (${headOf(state).name}), not on ${nodeRec.name}`, {
      hint: `use --node ${headOf(state).name}, or --daemon slurmd for ${nodeRec.name}`,
    });
  }
  if (d === 'slurmd' && nodeRec.role === 'head') {
    throw new SlurmkitError('USAGE', `the head ${nodeRec.name} runs no slurmd`, { hint: 'pick a worker with --node, or --daemon slurmctld' });
  }
  if (d === 'console') return hostFile(paths.consoleLog(nodeRec.name));
  const file = d === 'slurmd' || (d === 'munged' && nodeRec.role === 'worker') ? `${d}-${nodeRec.name}.log` : `${d}.log`;
  if (provider.capabilities.sharesHost) return hostFile(`${paths.logs}/${file}`);
  const inNode = `${NODE_LOGS}/${file}`;
  return {
    where: `${inNode} (in the logs volume of cluster ${name})`,
    async read(from = 0) {
      // Any running node sees the volume: the node itself, else the head, else another.
      const running = (await provider.list(labelOf(state))).filter((n) => n.running).map((n) => n.hostname);
      const via = [nodeRec.name, headOf(state).name, ...running].find((n) => running.includes(n));
      if (!via) {
        throw new SlurmkitError('CONFLICT', `cluster ${name} has no running node to read ${inNode} through`, { hint: `slurmkit start ${name}` });
      }
      const script = `[ -f ${inNode} ] || exit 3; stat -c %s ${inNode}; tail -c +${from + 1} ${inNode} | base64 -w0`;
      const r = await provider.exec({ label: labelOf(state), node: via, command: ['bash', '-c', script], stdio: 'capture' });
      if (r.exitCode === 3) return undefined;
      if (r.exitCode !== 0) throw new SlurmkitError('COMMAND_FAILED', `could not read ${inNode} on ${via}: ${r.stderr.trim()}`);
      const [size = '0', data = ''] = r.stdout.split('\n');
      return { size: Number(size), data: Number(size) > from ? Buffer.from(data, 'base64') : Buffer.alloc(0) };
    },
  };
}

function hostFile(file: string): LogSource {
  return {
    where: file,
    async read(from = 0) {
      if (!existsSync(file)) return undefined;
      const size = (await stat(file)).size;
      if (from >= size) return { size, data: Buffer.alloc(0) };
      const chunks: Buffer[] = [];
      await new Promise<void>((resolve, reject) => {
        createReadStream(file, { start: from, end: size - 1 }).on('data', (c) => chunks.push(c as Buffer)).on('end', resolve).on('error', reject);
      });
      return { size, data: Buffer.concat(chunks) };
    },
  };
}

/** Writes a log to `out`; with follow, keeps writing what is appended until the signal aborts. */
export async function showLog(source: LogSource, out: NodeJS.WritableStream, opts: { follow?: boolean; signal?: AbortSignal; lines?: number } = {}): Promise<void> {
  const first = await source.read();
  if (!first) {
    if (!opts.follow) throw new SlurmkitError('NOT_FOUND', `no log yet at ${source.where}`, { hint: 'the daemon has not started on this node' });
  } else {
    const lines = first.data.toString('utf8').split('\n');
    out.write(opts.lines ? lines.slice(-opts.lines - 1).join('\n') : first.data);
  }
  if (!opts.follow) return;
  let offset = first?.data.length ?? 0;
  while (!opts.signal?.aborted) {
    await sleep(250);
    const more = await source.read(offset);
    if (more === undefined) continue;
    // Rotated or truncated: shorter than what was shown. Start again from its beginning.
    if (more.size < offset) offset = 0;
    else if (more.data.length > 0) {
      out.write(more.data);
      offset += more.data.length;
    }
  }
}
