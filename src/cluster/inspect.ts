import { createReadStream, existsSync } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { SlurmkitError } from '../util/errors.js';
import { sleep } from '../util/run.js';
import { ClusterPaths } from './paths.js';
import { headOf, labelOf, providerFor, slurmNodes } from './nodes.js';
import { listClusterEntries, requireState, type ClusterState } from './state.js';

export interface NodeView {
  name: string;
  role: 'head' | 'worker';
  address: string;
  /** The node's namespaces exist (its init runs). */
  running: boolean;
  pid: number | null;
  processes: string[];
  /** Slurm's state for workers (idle, alloc, down, ...), null when slurmctld does not answer. */
  slurmState: string | null;
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
  const live = new Map((await providerFor(state).list(labelOf(state))).map((n) => [n.hostname, n]));
  const slurm = live.get(headOf(state).name)?.running ? await slurmNodes(state) : undefined;
  const slurmBy = new Map((slurm ?? []).map((n) => [n.name, n]));
  return state.nodes.map((n) => {
    const l = live.get(n.name);
    const s = slurmBy.get(n.name);
    return {
      name: n.name,
      role: n.role,
      address: n.address,
      running: l?.running ?? false,
      pid: l?.pid ?? null,
      processes: l?.processes ?? [],
      slurmState: n.role === 'head' ? null : s ? `${s.state}${s.notResponding ? '*' : ''}` : null,
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

export async function showCluster(name: string): Promise<ClusterView & { nodeList: NodeView[]; timings: ClusterState['timings'] }> {
  const state = await requireState(name);
  return { ...(await clusterView(state)), nodeList: await nodeViews(state), timings: state.timings };
}

export const DAEMONS = ['slurmctld', 'slurmd', 'munged', 'console'] as const;
export type Daemon = (typeof DAEMONS)[number];

export async function logPath(name: string, node?: string, daemon?: Daemon): Promise<string> {
  const state = await requireState(name);
  const paths = ClusterPaths.of(name);
  const nodeRec = node ? state.nodes.find((n) => n.name === node) : headOf(state);
  if (!nodeRec) {
    throw new SlurmkitError('NOT_FOUND', `cluster ${name} has no node "${node}"`, {
      hint: `nodes: ${state.nodes.map((n) => n.name).join(', ')}`,
    });
  }
  const d: Daemon = daemon ?? (nodeRec.role === 'head' ? 'slurmctld' : 'slurmd');
  // Workers that do not share this machine run a munged of their own.
  const ownMunged = !providerFor(state).capabilities.sharesHost;
  const headOnly = d === 'slurmctld' || (d === 'munged' && !ownMunged);
  if (headOnly && nodeRec.role !== 'head') {
    throw new SlurmkitError('USAGE', `${d} runs on the head (${headOf(state).name}), not on ${nodeRec.name}`, {
      hint: `use --node ${headOf(state).name}, or --daemon slurmd for ${nodeRec.name}`,
    });
  }
  if (d === 'slurmd' && nodeRec.role === 'head') {
    throw new SlurmkitError('USAGE', `the head ${nodeRec.name} runs no slurmd`, { hint: 'pick a worker with --node, or --daemon slurmctld' });
  }
  const file =
    d === 'console'
      ? paths.consoleLog(nodeRec.name)
      : d === 'slurmd' || (d === 'munged' && nodeRec.role === 'worker')
        ? `${paths.logs}/${d}-${nodeRec.name}.log`
        : `${paths.logs}/${d}.log`;
  return file;
}

/** Writes a log file to `out`; with follow, keeps writing what is appended until the signal aborts. */
export async function showLog(file: string, out: NodeJS.WritableStream, opts: { follow?: boolean; signal?: AbortSignal; lines?: number } = {}): Promise<void> {
  if (!existsSync(file)) {
    if (!opts.follow) throw new SlurmkitError('NOT_FOUND', `no log yet at ${file}`, { hint: 'the daemon has not started on this node' });
  } else {
    const text = await readFile(file, 'utf8');
    const lines = text.split('\n');
    out.write(opts.lines ? lines.slice(-opts.lines - 1).join('\n') : text);
  }
  if (!opts.follow) return;
  let offset = existsSync(file) ? (await stat(file)).size : 0;
  while (!opts.signal?.aborted) {
    await sleep(250);
    const size = existsSync(file) ? (await stat(file)).size : 0;
    if (size < offset) offset = 0; // rotated or truncated
    if (size > offset) {
      await new Promise<void>((resolve, reject) => {
        createReadStream(file, { start: offset, end: size - 1 }).on('data', (c) => out.write(c)).on('end', resolve).on('error', reject);
      });
      offset = size;
    }
  }
}
