import { randomBytes } from 'node:crypto';
import { chmod, mkdir, rm, writeFile, readFile } from 'node:fs/promises';
import type { ClusterConfig } from '../spec/types.js';
import { renderCgroupConf, renderHosts, renderMpiConf, renderSlurmConf } from '../slurm/render.js';
import { isReady, parseSinfoNodes, SINFO_NODE_ARGS, type NodeSlurmState } from '../slurm/status.js';
import type { ClusterLabel, LeftoverReport, NodeProvider } from '../providers/types.js';
import { LocalProvider } from '../providers/local/provider.js';
import { bridgeName, hostRoutes } from '../providers/local/network.js';
import { SlurmkitError } from '../util/errors.js';
import { Progress } from '../util/progress.js';
import { waitFor } from '../util/run.js';
import { ClusterPaths, homeTag } from './paths.js';
import { listStates, readState, requireState, saveState, type ClusterState, type NodeRecord } from './state.js';
import { pickSubnet, planNetwork, prefixFor, overlaps, withAllocationLock } from './subnet.js';
import { daemonsFor, nodeSpecFor } from './layout.js';
import { NO_SITE, siteOf, writeSiteFiles } from './site.js';
import { preflight } from './doctor.js';
import { readConnectionStringFile } from '../storage/connection-string.js';

export const labelOf = (s: { name: string; id: string }): ClusterLabel => ({ name: s.name, id: s.id, home: homeTag() });

export function providerFor(_state: Pick<ClusterState, 'provider'>): NodeProvider {
  return new LocalProvider();
}

export interface UpOptions {
  config: ClusterConfig;
  /** The spec text as the user gave it, kept in the cluster folder. */
  specText: string;
  progress?: Progress;
  /** How long to wait for every node to be idle. */
  readyTimeoutMs?: number;
}

/** Creates a cluster and returns once every node is idle in Slurm. On failure, removes what it made. */
export async function up(opts: UpOptions): Promise<ClusterState> {
  const { config } = opts;
  const progress = opts.progress ?? Progress.silent();
  const paths = ClusterPaths.of(config.name);
  await preflight();
  // A real account's connection string file is checked before anything is made.
  if (config.storage.blob === 'azure' && config.storage.connectionStringFile) await readConnectionStringFile(config.storage.connectionStringFile);

  let state: ClusterState | undefined;
  try {
    state = await progress.phase('allocate network', () =>
      withAllocationLock(async () => {
        if (await readState(config.name)) {
          throw new SlurmkitError('CONFLICT', `a cluster named "${config.name}" already exists`, {
            hint: `use it (slurmkit show ${config.name}), remove it (slurmkit down ${config.name}) or pick another name with --name`,
          });
        }
        const taken = [...(await listStates()).map((s) => s.network.subnet), ...(await hostRoutes()).map((r) => r.dst)];
        const workers = config.nodes.map((n) => n.name);
        let subnet = config.network.subnet;
        if (subnet) {
          const clash = taken.find((t) => overlaps(subnet!, t));
          if (clash) {
            throw new SlurmkitError('CONFLICT', `network.subnet ${subnet} overlaps ${clash}, already in use on this machine`, {
              hint: 'remove network.subnet from the spec to let slurmkit pick a free one',
            });
          }
        } else {
          subnet = pickSubnet(prefixFor(workers.length), taken);
        }
        const net = planNetwork(subnet, config.head.hostname, workers);
        const id = randomBytes(3).toString('hex');
        const nodes: NodeRecord[] = [
          { name: config.head.hostname, role: 'head', index: 0, address: net.addresses[config.head.hostname]! },
          ...workers.map((w, i): NodeRecord => ({ name: w, role: 'worker', index: i + 1, address: net.addresses[w]! })),
        ];
        const now = new Date().toISOString();
        const s: ClusterState = {
          version: 1,
          name: config.name,
          id,
          provider: 'local',
          createdAt: now,
          updatedAt: now,
          phase: 'creating',
          network: { ...net, bridge: bridgeName(id) },
          nodes,
          site: siteOf(config),
          storage: config.storage,
          timings: [],
        };
        await mkdir(paths.root, { recursive: true, mode: 0o700 });
        await saveState(s);
        return s;
      }),
    );
    const st = state;
    await progress.phase('write config and keys', async () => {
      await writeClusterFiles(st, config, opts.specText, paths);
      await saveState(st);
    });
    // Blob storage starts as soon as the head runs, while the workers boot. Azurite is only
    // launched here (it takes about a second to answer); the first command that needs it waits.
    let storage: Promise<unknown> | undefined;
    await bootAll(st, progress, opts.readyTimeoutMs, () => {
      storage = import('../storage/blob.js').then((m) => m.startSpecBlobStorage(st.name, { wait: false }));
      storage.catch(() => undefined); // awaited below; a failure there fails `up`
    });
    if (storage && config.storage.blob !== 'none') {
      await progress.phase(config.storage.blob === 'azurite' ? `launch Azurite on ${config.head.hostname}` : 'check blob storage account', () => storage!);
    }
    st.phase = 'running';
    st.timings = progress.timings;
    await saveState(st);
    return st;
  } catch (err) {
    if (state) {
      const diagnosis = await diagnose(paths);
      await progress
        .phase('clean up after failure', () => destroy(state!, { force: true }), { always: true })
        .catch((cleanupErr: unknown) => progress.info(`  cleanup incomplete: ${(cleanupErr as Error).message}`));
      if (err instanceof SlurmkitError && err.code === 'TIMEOUT' && diagnosis) {
        throw new SlurmkitError(err.code, `${err.message}${diagnosis}`, { hint: err.hint ?? 'run `slurmkit doctor`', details: err.details });
      }
    }
    throw err;
  }
}

/** The last lines of the daemons' logs, to say why a cluster did not come up. */
async function diagnose(paths: ClusterPaths): Promise<string> {
  const parts: string[] = [];
  for (const file of ['slurmctld.log', 'munged.log']) {
    const text = await readFile(`${paths.logs}/${file}`, 'utf8').catch(() => '');
    const errors = text.split('\n').filter((l) => /error|fatal/i.test(l)).slice(-5);
    if (errors.length) parts.push(`\n${file}:\n${errors.join('\n')}`);
  }
  return parts.join('');
}

async function writeClusterFiles(state: ClusterState, config: ClusterConfig, specText: string, paths: ClusterPaths): Promise<void> {
  for (const dir of [paths.slurmEtc, paths.slurmLib, paths.logs, paths.mungeRun, paths.nodesWork]) {
    await mkdir(dir, { recursive: true, mode: 0o755 });
  }
  await mkdir(paths.mungeEtc, { recursive: true, mode: 0o700 });
  await chmod(paths.mungeEtc, 0o700);
  // A fresh key per cluster, written straight with owner-only permissions: never logged, never an argument.
  await writeFile(paths.mungeKey, randomBytes(1024), { mode: 0o400, flag: 'wx' });
  await writeFile(paths.spec, specText, { mode: 0o600 });
  await renderConfig(state, config, paths);
  await writeSiteFiles(config, paths);
}

export async function renderConfig(state: ClusterState, config: ClusterConfig, paths: ClusterPaths): Promise<void> {
  await writeFile(paths.slurmConf, renderSlurmConf(config, state.network), { mode: 0o644 });
  await writeFile(paths.cgroupConf, renderCgroupConf(config), { mode: 0o644 });
  await writeFile(`${paths.slurmEtc}/mpi.conf`, renderMpiConf(config), { mode: 0o644 });
  await writeFile(paths.hosts, renderHosts(config, state.network), { mode: 0o644 });
}

function networkRequest(state: ClusterState) {
  return {
    label: labelOf(state),
    subnet: state.network.subnet,
    gateway: state.network.gateway,
    prefixLength: state.network.prefixLength,
  };
}

/** Network, head, workers, then wait for Slurm to call every worker idle. */
async function bootAll(state: ClusterState, progress: Progress, readyTimeoutMs = 60_000, afterHead?: () => void): Promise<void> {
  const provider = providerFor(state);
  await progress.phase('network', () => provider.ensureNetwork(networkRequest(state)));
  await createInOrder(state, state.nodes, progress, afterHead);
  await saveState(state);
  await progress.phase('wait for nodes idle', () => waitIdle(state, readyTimeoutMs, progress.signal));
}

/**
 * Creates nodes, the head first: slurmd registers at once with a controller that answers,
 * but waits about a second before retrying one that does not answer yet.
 */
async function createInOrder(state: ClusterState, nodes: NodeRecord[], progress: Progress, afterHead?: () => void): Promise<void> {
  const provider = providerFor(state);
  const paths = ClusterPaths.of(state.name);
  const create = (group: NodeRecord[]) =>
    provider.createNodes({
      label: labelOf(state),
      network: networkRequest(state),
      nodes: group.map((n) => nodeSpecFor(n, paths, state.name, state.site ?? NO_SITE)),
      workDir: paths.nodesWork,
      timeoutMs: 30_000,
    });
  const head = nodes.filter((n) => n.role === 'head');
  const workers = nodes.filter((n) => n.role === 'worker');
  if (head.length > 0) await progress.phase('start head (munged, slurmctld)', () => create(head));
  afterHead?.();
  if (workers.length > 0) await progress.phase(`start ${workers.length} worker(s)`, () => create(workers));
}

/** Slurm's view of the workers, from inside the head. Undefined while slurmctld does not answer. */
export async function slurmNodes(state: ClusterState): Promise<NodeSlurmState[] | undefined> {
  const r = await providerFor(state)
    .exec({ label: labelOf(state), node: headOf(state).name, command: ['sinfo', ...SINFO_NODE_ARGS], stdio: 'capture' })
    .catch(() => undefined);
  if (!r || r.exitCode !== 0) return undefined;
  return parseSinfoNodes(r.stdout);
}

export async function waitIdle(state: ClusterState, timeoutMs: number, signal?: AbortSignal): Promise<void> {
  const workers = state.nodes.filter((n) => n.role === 'worker').map((n) => n.name);
  let last: NodeSlurmState[] | undefined;
  await waitFor(
    'every node to be idle in Slurm',
    async () => {
      last = await slurmNodes(state);
      if (!last) {
        await failIfControllerDied(state);
        return undefined;
      }
      const ready = new Set(last.filter(isReady).map((n) => n.name));
      return workers.every((w) => ready.has(w)) ? true : undefined;
    },
    {
      timeoutMs,
      intervalMs: 30,
      maxIntervalMs: 100,
      ...(signal ? { signal } : {}),
      describe: () =>
        last ? last.filter((n) => !isReady(n)).map((n) => `${n.name}=${n.state}${n.notResponding ? '*' : ''}`).join(' ') || 'all idle' : 'slurmctld not answering',
    },
  );
}

/** Fails fast, with the controller's own last words, instead of waiting out a timeout. */
async function failIfControllerDied(state: ClusterState): Promise<void> {
  const head = (await providerFor(state).list(labelOf(state))).find((n) => n.hostname === headOf(state).name);
  const missing = ['munged', 'slurmctld'].filter((d) => !head?.processes.includes(d));
  if (missing.length > 0) {
    throw new SlurmkitError('COMMAND_FAILED', `${missing.join(' and ')} on ${headOf(state).name} exited`, {
      hint: `see: slurmkit logs ${state.name} --daemon ${missing[0]}`,
    });
  }
}

/** Runs a shell command as root in the head and returns its stdout; a non-zero exit is COMMAND_FAILED. */
export async function runInHead(state: ClusterState, command: string): Promise<string> {
  const head = headOf(state).name;
  const r = await providerFor(state).exec({ label: labelOf(state), node: head, command: ['bash', '-c', command], stdio: 'capture', cwd: '/' });
  if (r.exitCode !== 0) {
    throw new SlurmkitError('COMMAND_FAILED', `\`${command}\` on ${head} exited with ${r.exitCode}: ${r.stderr.trim()}`);
  }
  return r.stdout;
}

export const headOf = (state: ClusterState): NodeRecord => state.nodes.find((n) => n.role === 'head')!;

/** Stops every node and daemon; the cluster folder, Slurm state and queue are kept. */
export async function stop(name: string, progress = Progress.silent()): Promise<ClusterState> {
  const state = await requireState(name);
  const provider = providerFor(state);
  state.phase = 'stopping';
  await saveState(state);
  await progress.phase('stop daemons and nodes', () =>
    // slurmctld saves its state on SIGTERM, which each node's init passes on.
    provider.destroyNodes(labelOf(state), state.nodes.map((n) => n.name), { graceMs: 10_000 }),
  );
  await progress.phase('remove network', async () => {
    const report = await provider.removeByLabel({ id: state.id });
    failOnLeftovers(state, report, `slurmkit stop ${name}`);
  });
  state.phase = 'stopped';
  state.timings = progress.timings;
  await saveState(state);
  return state;
}

/**
 * Brings a cluster to running: from stopped, boots everything; when running, restarts
 * nodes and daemons that died, leaving healthy ones alone.
 */
export async function start(name: string, progress = Progress.silent(), readyTimeoutMs = 60_000): Promise<ClusterState> {
  const state = await requireState(name);
  await preflight();
  const provider = providerFor(state);
  const running = new Map((await provider.list(labelOf(state))).filter((n) => n.running).map((n) => [n.hostname, n]));
  state.phase = 'starting';
  await saveState(state);
  await progress.phase('network', () => provider.ensureNetwork(networkRequest(state)));
  const missing = state.nodes.filter((n) => !running.has(n.name));
  await createInOrder(state, missing, progress);
  const restarted: string[] = [];
  for (const node of state.nodes.filter((n) => running.has(n.name))) {
    const have = running.get(node.name)!.processes;
    for (const daemon of daemonsFor(node, state.name, state.site ?? NO_SITE).filter((d) => !have.includes(d.name))) {
      await progress.phase(`restart ${daemon.name} on ${node.name}`, async () => {
        const r = await provider.exec({ label: labelOf(state), node: node.name, command: ['bash', '-c', daemon.start], stdio: 'capture' });
        if (r.exitCode !== 0) {
          throw new SlurmkitError('COMMAND_FAILED', `${daemon.name} on ${node.name} did not start (exit ${r.exitCode}): ${r.stderr.trim()}`, {
            hint: `see: slurmkit logs ${name} --node ${node.name} --daemon ${daemon.name}`,
          });
        }
      });
      restarted.push(`${daemon.name}@${node.name}`);
    }
  }
  if (missing.length === 0 && restarted.length === 0) progress.info('  every node and daemon was already running');
  await progress.phase('wait for nodes idle', () => waitIdle(state, readyTimeoutMs, progress.signal));
  state.phase = 'running';
  await saveState(state);
  // Blob storage runs in the head: bring it back if the cluster had it (imported late: storage builds on this module).
  const { resumeBlobStorage } = await import('../storage/blob.js');
  await progress
    .phase('resume blob storage', () => resumeBlobStorage(name))
    .catch((err: unknown) => progress.info(`  blob storage did not come back: ${(err as Error).message}`));
  state.timings = progress.timings;
  await saveState(state);
  return state;
}

function failOnLeftovers(state: ClusterState, report: LeftoverReport, retry: string): void {
  if (report.failed.length === 0) return;
  throw new SlurmkitError('CLEANUP_INCOMPLETE', `could not remove ${report.failed.length} resource(s) of cluster ${state.name}`, {
    details: report.failed.map((f) => `${f.resource}: ${f.error}\n    retry: ${f.retry}`),
    hint: `after fixing the cause, run again: ${retry}`,
  });
}

export interface DownResult {
  name: string;
  existed: boolean;
  removed: string[];
}

/** Removes every trace of a cluster. Idempotent. */
export async function down(name: string, opts: { force?: boolean; progress?: Progress } = {}): Promise<DownResult> {
  const progress = opts.progress ?? Progress.silent();
  let unreadable = false;
  const state = await readState(name).catch((err) => {
    if (!opts.force) throw err;
    unreadable = true;
    return undefined;
  });
  if (!state) {
    await rm(ClusterPaths.of(name).root, { recursive: true, force: true });
    // Without its state the cluster's id is unknown: collect what no remaining cluster owns, as gc does.
    const removed = unreadable ? (await gc()).removed : [];
    return { name, existed: unreadable, removed };
  }
  const removed = await progress.phase('remove nodes, network and files', () => destroy(state, opts));
  return { name, existed: true, removed };
}

async function destroy(state: ClusterState, opts: { force?: boolean }): Promise<string[]> {
  state.phase = 'destroying';
  await saveState(state).catch(() => undefined);
  const report = await providerFor(state).removeByLabel({ id: state.id });
  if (!opts.force) failOnLeftovers(state, report, `slurmkit down ${state.name}`);
  await rm(ClusterPaths.of(state.name).root, { recursive: true, force: true });
  if (report.failed.length > 0) failOnLeftovers(state, report, `slurmkit gc`);
  return report.removed;
}

/** Removes resources labeled by slurmkit whose cluster no longer exists. */
export async function gc(): Promise<LeftoverReport> {
  const keepIds = (await listStates()).map((s) => s.id);
  return new LocalProvider().removeByLabel({ home: homeTag(), keepIds });
}
