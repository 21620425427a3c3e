import { startAgent, stopAgent } from './agent-process.js';
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, readdir, rm, writeFile, readFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { ClusterConfig } from '../spec/types.js';
import { renderCgroupConf, renderHosts, renderMpiConf, renderPowerPrograms, renderSlurmConf } from '../slurm/render.js';
import { isInService, isReady, type NodeSlurmState } from '../slurm/status.js';
import type { LeftoverReport } from '../providers/types.js';
import { allProviders, providerFor as providerOfKind } from '../providers/registry.js';
import { optionsOf, placeNodes, withoutHosts } from './placement.js';
import { knownHosts, rememberHosts } from './known-hosts.js';
import { SlurmkitError } from '../util/errors.js';
import { Progress } from '../util/progress.js';
import { waitFor } from '../util/run.js';
import { writeSandboxFiles, sandboxGroup } from '../sandbox/sandbox.js';
import { ClusterPaths, homeTag } from './paths.js';
import { headOf, labelOf, optionsOfState, providerFor, runInHead, slurmNodes } from './nodes.js';
import { createState, listClusterEntries, listStates, readState, requireState, updateState, STATE_VERSION, type ClusterState, type NodeRecord } from './state.js';
import { acquireLock, type HeldLock } from '../util/lock.js';
import { pickSubnet, planNetwork, prefixFor, overlaps, withAllocationLock } from './subnet.js';
import { daemonsFor, nodeSpecFor, type Daemon } from './layout.js';
import { NO_SITE, siteOf, writeSiteFiles } from './site.js';
import { checkMemoryFor, preflight } from './doctor.js';
import type { HeadService } from './services.js';
import { logSource } from './inspect.js';
import { checkJupyterInstalled, loginOf, waitJupyter } from './login.js';

/**
 * A lifecycle command (up, stop, start, down) holds its cluster for as long as it runs; a
 * second one on the same cluster is refused at once, naming the first, instead of interleaving.
 */
async function holdCluster(name: string, verb: string): Promise<HeldLock> {
  const paths = ClusterPaths.of(name);
  if (!existsSync(paths.root)) await requireState(name);
  return acquireLock(join(paths.root, 'operation.lock'), {
    timeoutMs: 0,
    what: `cluster ${name}`,
    owner: `slurmkit ${verb}, pid ${process.pid}, since ${new Date().toISOString()}`,
  });
}

/** Runs a lifecycle command while holding its cluster. */
export async function holding<T>(name: string, verb: string, fn: () => Promise<T>): Promise<T> {
  const lock = await holdCluster(name, verb);
  try {
    return await fn();
  } finally {
    await lock.release();
  }
}

export interface UpOptions {
  config: ClusterConfig;
  /** The spec text as the user gave it, kept in the cluster folder. */
  specText: string;
  progress?: Progress;
  /** How long to wait for every node to be idle. */
  readyTimeoutMs?: number;
  /** Services the head runs beside Slurm (the application layer's choice; none by default). */
  services?: HeadService[];
  /** Start the autoscaling agent as a process of its own (default); tests may run it in theirs. */
  agent?: boolean;
}

/** Creates a cluster and returns once every node is idle in Slurm. On failure, removes what it made. */
export async function up(opts: UpOptions): Promise<ClusterState> {
  const progress = opts.progress ?? Progress.silent();
  const paths = ClusterPaths.of(opts.config.name);
  // Of a swarm's hosts, those that do not answer may be done without (their nodes left out) while every group keeps its minNodes.
  const listed = optionsOf(opts.config.provider);
  const lost = await preflight({ name: opts.config.name, site: siteOf(opts.config), provider: opts.config.provider.type, ...(listed ? { options: listed, mayLoseHosts: true } : {}) });
  const { config, left } = withoutHosts(opts.config, lost);
  for (const l of lost) progress.info(`host ${l.host}: ${l.detail}`);
  if (left.length > 0) progress.info(`going on without ${left.join(', ')} (every group keeps its minNodes)`);
  const options = optionsOf(config.provider);
  const hosts = options?.hosts;
  if (hosts) await rememberHosts(hosts);
  const nodeProvider = providerOfKind(config.provider.type, options ?? {});
  // Nodes that share this machine run its programs; other nodes have them in their image.
  if (config.login?.jupyter && nodeProvider.capabilities.sharesHost) await checkJupyterInstalled();
  const services = opts.services ?? [];
  for (const service of services) await service.prepare?.(config);
  await checkMemoryFor(config.nodes.length + 1, nodeProvider);
  if (nodeProvider.prepare) await progress.phase('node image', () => nodeProvider.prepare!((line) => progress.info(`  ${line}`)));

  let state: ClusterState | undefined;
  let hold: HeldLock | undefined;
  try {
    state = await progress.phase('allocate network', () =>
      withAllocationLock(async () => {
        await mkdir(paths.root, { recursive: true, mode: 0o700 });
        hold = await holdCluster(config.name, 'up');
        await finishInterrupted(config.name, progress);
        const taken = [...(await listStates()).map((s) => s.network.subnet), ...(await nodeProvider.takenSubnets())];
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
        const net = planNetwork(subnet, config.head.hostname, workers, config.login?.hostname);
        const id = randomBytes(3).toString('hex');
        const placed = placeNodes(config.provider, config.head.hostname, workers);
        const on = (name: string) => (placed ? { host: placed.get(name)! } : {});
        const workerRecords = config.nodes.map((w, i): NodeRecord => ({ name: w.name, role: 'worker', index: i + 1, address: net.addresses[w.name]!, ...on(w.name), group: w.group, ...(w.cloud ? { cloud: true } : {}) }));
        const nodes: NodeRecord[] = [
          { name: config.head.hostname, role: 'head', index: 0, address: net.addresses[config.head.hostname]!, ...on(config.head.hostname) },
          // Autoscaled nodes are planned (name, address, index) but made only when Slurm asks for them.
          ...workerRecords.filter((w) => !w.cloud),
          // Outside Slurm's compute nodes: where users work and submit from.
          ...(config.login
            ? [{ name: config.login.hostname, role: 'login' as const, index: workerRecords.length + 1, address: net.addresses[config.login.hostname]!, ...on(config.head.hostname), ...(config.login.jupyter ? { jupyter: true as const } : {}) }]
            : []),
        ];
        const cloud = workerRecords.filter((w) => w.cloud);
        const now = new Date().toISOString();
        return createState({
          version: STATE_VERSION,
          name: config.name,
          id,
          provider: config.provider.type,
          createdAt: now,
          updatedAt: now,
          phase: 'creating',
          network: net,
          nodes,
          ...(cloud.length > 0 ? { cloud } : {}),
          ...(hosts ? { hosts } : {}),
          ...(options?.registry ? { registry: options.registry } : {}),
          site: siteOf(config),
          storage: config.storage,
          timings: [],
        });
      }),
    );
    const st = state;
    await progress.phase('write config and keys', () => writeClusterFiles(st, config, opts.specText, paths));
    // Head services start as soon as the head runs, while the workers boot; each is only
    // launched here (Azurite takes about a second to answer): the first command that needs it waits.
    const booting: { service: HeadService; done: Promise<void> }[] = [];
    await bootAll(st, progress, services, opts.readyTimeoutMs, () => {
      for (const service of services.filter((s) => s.wanted(st))) {
        const done = service.boot(st);
        done.catch(() => undefined); // awaited below; a failure there fails `up`
        booting.push({ service, done });
      }
    });
    for (const { service, done } of booting) await progress.phase(`launch ${service.name} on ${config.head.hostname}`, () => done);
    state = await updateState(st.name, st.id, (s) => {
      s.phase = 'running';
      s.timings = progress.timings;
    });
    if (opts.agent !== false) await startAgent(state);
    return state;
  } catch (err) {
    if (state) {
      const diagnosis = await diagnose(state.name);
      await progress
        .phase('clean up after failure', () => destroy(state!, { force: true }), { always: true })
        .catch((cleanupErr: unknown) => progress.info(`  cleanup incomplete: ${(cleanupErr as Error).message}`));
      if (err instanceof SlurmkitError && err.code === 'TIMEOUT' && diagnosis) {
        throw new SlurmkitError(err.code, `${err.message}${diagnosis}`, { hint: err.hint ?? 'run `slurmkit doctor`', details: err.details });
      }
    } else if (hold && !(err instanceof SlurmkitError && err.code === 'CONFLICT')) {
      // Nothing was made but the folder: leave no empty cluster behind.
      await rm(paths.root, { recursive: true, force: true });
    }
    throw err;
  } finally {
    await hold?.release();
  }
}

/**
 * A cluster left half-made by an `up` that was killed (phase creating) or half-removed by a
 * `down` that was killed (destroying) is finished off, so that `up` of the same name works;
 * any other existing cluster of that name is a CONFLICT. Called holding the cluster.
 */
async function finishInterrupted(name: string, progress: Progress): Promise<void> {
  const existing = await readState(name);
  if (!existing) return;
  if (existing.phase === 'creating' || existing.phase === 'destroying') {
    await progress.phase(`remove what an interrupted ${existing.phase === 'creating' ? 'up' : 'down'} of ${name} left`, () => destroy(existing, { force: true, keepFolder: true }));
    return;
  }
  throw new SlurmkitError('CONFLICT', `a cluster named "${name}" already exists`, {
    hint: `use it (slurmkit show ${name}), remove it (slurmkit down ${name}) or pick another name with --name`,
  });
}

/** The last lines of the daemons' logs, to say why a cluster did not come up. */
async function diagnose(name: string): Promise<string> {
  const parts: string[] = [];
  for (const daemon of ['slurmctld', 'munged'] as const) {
    const log = await logSource(name, undefined, daemon)
      .then((source) => source.read())
      .catch(() => undefined);
    const errors = (log?.data.toString('utf8') ?? '').split('\n').filter((l) => /error|fatal/i.test(l)).slice(-5);
    if (errors.length) parts.push(`\n${daemon}.log:\n${errors.join('\n')}`);
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
  if (config.login?.jupyter) await writeJupyterTokens(paths, config.users.map((u) => u.name));
}

/** A Jupyter token per cluster user, made here and never shown but by `slurmkit jupyter` to the owner. */
async function writeJupyterTokens(paths: ClusterPaths, users: string[]): Promise<void> {
  await mkdir(paths.jupyterTokens, { recursive: true, mode: 0o700 });
  for (const u of users) await writeFile(join(paths.jupyterTokens, u), randomBytes(24).toString('hex'), { mode: 0o600, flag: 'wx' });
}

export async function renderConfig(state: ClusterState, config: ClusterConfig, paths: ClusterPaths): Promise<void> {
  await writeFile(paths.slurmConf, renderSlurmConf(config, state.network, { configless: configFrom(state) !== undefined }), { mode: 0o644 });
  await writeFile(paths.cgroupConf, renderCgroupConf(config), { mode: 0o644 });
  await writeFile(`${paths.slurmEtc}/mpi.conf`, renderMpiConf(config), { mode: 0o644 });
  for (const [file, text] of Object.entries(renderPowerPrograms(config))) await writeFile(`${paths.slurmEtc}/${file}`, text, { mode: 0o755 });
  await writeSandboxFiles(config, paths.slurmEtc, sandboxGroup(homeTag(), state.id), state.network);
  await writeFile(paths.hosts, renderHosts(config, state.network), { mode: 0o644 });
}

/** Nodes that do not share this machine fetch Slurm's configuration from the head (configless). */
export function configFrom(state: ClusterState): string | undefined {
  return providerFor(state).capabilities.sharesHost ? undefined : headOf(state).address;
}

/** The head's address where the provider's volumes stay on their host: the head then serves /home and /shared. */
export function sharedFrom(state: ClusterState): string | undefined {
  return providerFor(state).capabilities.sharedVolumes ? undefined : headOf(state).address;
}

export function networkRequest(state: ClusterState) {
  return {
    label: labelOf(state),
    subnet: state.network.subnet,
    gateway: state.network.gateway,
    prefixLength: state.network.prefixLength,
  };
}

/** Network, head, workers, then wait for Slurm to call every worker idle. */
async function bootAll(state: ClusterState, progress: Progress, services: HeadService[], readyTimeoutMs = 60_000, afterHead?: () => void): Promise<void> {
  const provider = providerFor(state);
  await progress.phase('network', () => provider.ensureNetwork(networkRequest(state)));
  await createInOrder(state, state.nodes, progress, services, afterHead);
  await progress.phase('wait for nodes idle', () => waitIdle(state, readyTimeoutMs, progress.signal));
  if (loginOf(state)?.jupyter) await progress.phase(`Jupyter on ${loginOf(state)!.name}`, () => waitJupyter(state, readyTimeoutMs, progress.signal));
}

/**
 * Once slurmctld has started from the rewritten slurm.conf, nodes added while the cluster ran
 * are in the configuration it hands out: their slurmd no longer registers as a dynamic node
 * (slurmd -Z would refuse a name the configuration lists).
 */
export async function settleAddedNodes(state: ClusterState): Promise<ClusterState> {
  if (!state.nodes.some((n) => n.slurmdConf)) return state;
  return updateState(state.name, state.id, (s) => {
    for (const n of s.nodes) delete n.slurmdConf;
  });
}

/**
 * Creates nodes, the head first: slurmd registers at once with a controller that answers,
 * but waits about a second before retrying one that does not answer yet.
 */
export async function createInOrder(state: ClusterState, nodes: NodeRecord[], progress: Progress, services: HeadService[], afterHead?: () => void): Promise<void> {
  const provider = providerFor(state);
  const paths = ClusterPaths.of(state.name);
  const from = configFrom(state);
  // A head that does not see the cluster folder keeps its services' data in volumes.
  const headNeeds = async () => (from === undefined ? [] : await Promise.all(services.filter((s) => s.wanted(state)).map((s) => s.headNeeds?.(state) ?? {})));
  const create = async (group: NodeRecord[]) =>
    provider.createNodes({
      label: labelOf(state),
      network: networkRequest(state),
      nodes: await Promise.all(
        group.map(async (n) => ({
          ...(await nodeSpecFor(n, paths, state.name, state.site ?? NO_SITE, from, n.role === 'head' ? await headNeeds() : [], sharedFrom(state))),
          neighbours: n.role === 'head' ? ('subnet' as const) : [headOf(state).address],
        })),
      ),
      workDir: paths.nodesWork,
      // A node boots in about 30 ms of this machine's time (2 cores), one after another at worst.
      timeoutMs: 30_000 + 60 * group.length,
    });
  const head = nodes.filter((n) => n.role === 'head');
  let workers = nodes.filter((n) => n.role === 'worker');
  if (head.length > 0) {
    await progress.phase('start head (munged, slurmctld)', () => create(head));
    // A new slurmctld read slurm.conf, which lists the nodes added while the old one ran.
    const settled = await settleAddedNodes(state);
    workers = workers.map((w) => settled.nodes.find((n) => n.name === w.name) ?? w);
  }
  afterHead?.();
  if (workers.length > 0) await progress.phase(`start ${workers.length} worker(s)`, () => create(workers));
  const logins = nodes.filter((n) => n.role === 'login');
  if (logins.length > 0) await progress.phase(`start login node ${logins.map((n) => n.name).join(', ')}`, () => create(logins));
}


export async function waitIdle(state: ClusterState, timeoutMs: number, signal?: AbortSignal, ready: (n: NodeSlurmState) => boolean = isReady): Promise<NodeSlurmState[]> {
  const workers = state.nodes.filter((n) => n.role === 'worker').map((n) => n.name);
  let last: NodeSlurmState[] | undefined;
  await waitFor(
    ready === isReady ? 'every node to be idle in Slurm' : 'every node to answer Slurm',
    async () => {
      last = await slurmNodes(state);
      if (!last) {
        await failIfControllerDied(state);
        return undefined;
      }
      const up = new Set(last.filter(ready).map((n) => n.name));
      return workers.every((w) => up.has(w)) ? true : undefined;
    },
    {
      timeoutMs,
      intervalMs: 30,
      maxIntervalMs: 100,
      ...(signal ? { signal } : {}),
      describe: () =>
        last ? last.filter((n) => !ready(n)).map((n) => `${n.name}=${n.state}${n.notResponding ? '*' : ''}`).join(' ') || 'all idle' : 'slurmctld not answering',
    },
  );
  return last ?? [];
}

/** Why a drained node is drained, for the report of `start` (left as it is). */
async function drainReason(state: ClusterState, n: NodeSlurmState): Promise<string> {
  if (!n.state.startsWith('drain')) return '';
  const r = await providerFor(state)
    .exec({ label: labelOf(state), node: headOf(state).name, command: ['sinfo', '-h', '-N', '-n', n.name, '-o', '%E'], stdio: 'capture' })
    .catch(() => undefined);
  return r?.stdout.trim() ? ` (reason: ${r.stdout.trim()}; left as it is)` : '';
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



/** Stops every node and daemon; the cluster folder, Slurm state and queue are kept. */
export async function stop(name: string, progress = Progress.silent()): Promise<ClusterState> {
  return holding(name, 'stop', async () => {
    let state = await usableState(name, 'stop');
    const provider = providerFor(state);
    state = await updateState(name, state.id, (s) => void (s.phase = 'stopping'));
    // Autoscaling stops first: nothing is made while the cluster goes.
    await stopAgent(name);
    // Running jobs go back to the queue and run again after start, as on a node failure (a job
    // submitted with --no-requeue is not requeued: it ends FAILED, as Slurm reports).
    const running = (await runInHead(state, 'squeue -h -t RUNNING,CONFIGURING -o %i').catch(() => '')).split('\n').filter(Boolean);
    if (running.length > 0) {
      await progress.phase(`requeue ${running.length} running job(s)`, () => runInHead(state, `scontrol requeue ${running.join(',')} 2>&1 || true`));
    }
    // Workers first, while the head's munged and slurmctld still take their last messages (the
    // ends of the jobs stop kills); then the head: slurmctld saves its state on SIGTERM, which
    // the node's init passes on.
    const workers = state.nodes.filter((n) => n.role === 'worker').map((n) => n.name);
    const logins = state.nodes.filter((n) => n.role === 'login').map((n) => n.name);
    if (logins.length > 0) await progress.phase(`stop login node ${logins.join(', ')}`, () => provider.destroyNodes(labelOf(state), logins, { graceMs: 5_000 }));
    await progress.phase(`stop ${workers.length} worker(s)`, () => provider.destroyNodes(labelOf(state), workers, { graceMs: 10_000 }));
    await progress.phase(`stop ${headOf(state).name} (slurmctld saves its state)`, () => provider.destroyNodes(labelOf(state), [headOf(state).name], { graceMs: 10_000 }));
    await progress.phase('remove network', async () => {
      // The cluster's volumes (its shared folders, the head's state) stay for start.
      const report = await provider.removeByLabel({ id: state.id, keepVolumes: true });
      failOnLeftovers(state, report, `slurmkit stop ${name}`);
    });
    return updateState(name, state.id, (s) => {
      s.phase = 'stopped';
      s.timings = progress.timings;
    });
  });
}

/** The state of a cluster that a command may act on; a half-made or half-removed one is refused with the fix. */
export async function usableState(name: string, verb: string): Promise<ClusterState> {
  const state = await requireState(name);
  if (state.phase === 'creating' || state.phase === 'destroying') {
    throw new SlurmkitError('CONFLICT', `cluster ${name} was left ${state.phase === 'creating' ? 'half-made by an interrupted up' : 'half-removed by an interrupted down'}; it cannot ${verb}`, {
      hint: `remove it with: slurmkit down ${name} (or make it again: slurmkit up ... --name ${name})`,
    });
  }
  return state;
}

/**
 * Brings a cluster to running: from stopped, boots everything; when running, restarts
 * nodes and daemons that died, leaving healthy ones alone.
 */
export async function start(name: string, progress = Progress.silent(), readyTimeoutMs = 60_000, services: HeadService[] = []): Promise<ClusterState> {
  return holding(name, 'start', async () => {
    let state = await usableState(name, 'start');
    await preflight({ name, site: state.site ?? NO_SITE, provider: state.provider, options: optionsOfState(state) });
    const provider = providerFor(state);
    const running = new Map((await provider.list(labelOf(state))).filter((n) => n.running).map((n) => [n.hostname, n]));
    state = await updateState(name, state.id, (s) => void (s.phase = 'starting'));
    await progress.phase('network', () => provider.ensureNetwork(networkRequest(state)));
    const missing = state.nodes.filter((n) => !running.has(n.name));
    await createInOrder(state, missing, progress, services);
    const restarted: string[] = [];
    const runDaemon = async (node: NodeRecord, daemon: Daemon, command: string) => {
      const r = await provider.exec({ label: labelOf(state), node: node.name, command: ['bash', '-c', command], stdio: 'capture' });
      if (r.exitCode !== 0) {
        throw new SlurmkitError('COMMAND_FAILED', `${daemon.name} on ${node.name} did not start (exit ${r.exitCode}): ${r.stderr.trim()}`, {
          hint: `see: slurmkit logs ${name} --node ${node.name} --daemon ${daemon.name}`,
        });
      }
      restarted.push(`${daemon.name}@${node.name}`);
    };
    for (const node of state.nodes.filter((n) => running.has(n.name))) {
      const have = running.get(node.name)!.processes;
      for (const daemon of daemonsFor(node, state.name, state.site ?? NO_SITE, configFrom(state), sharedFrom(state)).filter((d) => !d.step && !have.includes(d.name))) {
        progress.info(`  ${daemon.name} on ${node.name} is not running`);
        await progress.phase(`restart ${daemon.name} on ${node.name}`, () => runDaemon(node, daemon, daemon.start));
      }
      for (const daemon of daemonsFor(node, state.name, state.site ?? NO_SITE, configFrom(state), sharedFrom(state)).filter((d) => d.rerun)) {
        await provider.exec({ label: labelOf(state), node: node.name, command: ['bash', '-c', daemon.start], stdio: 'capture' });
      }
    }
    // A slurmctld that died lost what happened since its last state save: it saves at most once
    // every 5 s (SAVE_MAX_WAIT, src/slurmctld/state_save.c), so a job that started in its last
    // seconds comes back PENDING. slurmd remembers, in memory only, the batch jobs it launched
    // until the controller ends them, and refuses to launch one again: slurmctld then drains
    // the node ("Duplicate jobid") and holds the job. Restarting slurmd (SIGTERM leaves jobs
    // running in their slurmstepd) clears those records; the new slurmd registers at once with
    // the steps that still run, and slurmctld reconciles as Slurm does (validate_jobs_on_node).
    // All at once: slurmctld schedules nothing in its first 3 s (batch_sched_delay keeps its
    // default of 3 until the first scheduling pass reads SchedulerParameters), so every slurmd
    // that registers within them has its unknown steps killed before a job can start again.
    // The same holds when the whole head node died and was made again.
    if (missing.some((n) => n.role === 'head') || restarted.includes(`slurmctld@${headOf(state).name}`)) {
      state = await settleAddedNodes(state);
      const again = state.nodes
        .filter((n) => n.role === 'worker' && running.get(n.name)?.processes.includes('slurmd'))
        .flatMap((node) => daemonsFor(node, state.name, state.site ?? NO_SITE, configFrom(state), sharedFrom(state)).flatMap((d) => (d.restart ? [{ node, daemon: d, command: d.restart }] : [])));
      if (again.length > 0) {
        await progress.phase(`restart slurmd on ${again.length} running worker(s)`, () => Promise.all(again.map(({ node, daemon, command }) => runDaemon(node, daemon, command))));
      }
    }
    if (missing.length === 0 && restarted.length === 0) progress.info('  every node and daemon was already running');
    // Nodes running jobs or drained by an administrator are back too: start waits for no job and undoes no drain.
    const nodes = await progress.phase('wait for nodes to answer', () => waitIdle(state, readyTimeoutMs, progress.signal, isInService));
    for (const n of nodes.filter((x) => x.state !== 'idle')) progress.info(`  ${n.name} is ${n.state}${await drainReason(state, n)}`);
    if (loginOf(state)?.jupyter) await progress.phase(`Jupyter on ${loginOf(state)!.name}`, () => waitJupyter(state, readyTimeoutMs, progress.signal));
    state = await updateState(name, state.id, (s) => void (s.phase = 'running'));
    // Head services come back with the head, if the cluster had them.
    for (const service of services) {
      await progress
        .phase(`resume ${service.name}`, () => service.resume(state, progress))
        .catch((err: unknown) => progress.info(`  ${service.name} did not come back: ${(err as Error).message}`));
    }
    state = await updateState(name, state.id, (s) => void (s.timings = progress.timings));
    await startAgent(state);
    return state;
  });
}

export function failOnLeftovers(state: ClusterState, report: LeftoverReport, retry: string): void {
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
  if (!existsSync(ClusterPaths.of(name).root)) return { name, existed: false, removed: [] };
  // --force goes ahead even while another command holds the cluster (a hung start, say): that
  // command is stopped first, so it cannot go on making what down removes.
  const hold = await holdCluster(name, 'down').catch((err: unknown) => {
    if (opts.force && err instanceof SlurmkitError && err.code === 'CONFLICT') return takeOver(name, progress);
    throw err;
  });
  try {
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
  } finally {
    await hold?.release();
  }
}

/**
 * Stops the slurmkit command that holds a cluster (SIGTERM: it stops after its current phase
 * and undoes what it made, as on Ctrl-C; SIGKILL after 15 s) and takes the cluster over.
 * Undefined when the holder is this very process (nothing to stop; go ahead without the lock).
 */
async function takeOver(name: string, progress: Progress): Promise<HeldLock | undefined> {
  const file = join(ClusterPaths.of(name).root, 'operation.lock');
  const owner = (await readFile(file, 'utf8').catch(() => '')).trim();
  const pid = Number(/pid (\d+)/.exec(owner)?.[1] ?? 0);
  if (!pid || pid === process.pid) return undefined;
  const take = (ms: number) => acquireLock(file, { timeoutMs: ms, what: `cluster ${name}`, owner: `slurmkit down --force, pid ${process.pid}` });
  progress.info(`  stopping ${owner.split(',')[0]} (pid ${pid}), which holds cluster ${name}`);
  const signal = (sig: NodeJS.Signals) => {
    try {
      process.kill(pid, sig);
    } catch {
      /* gone already */
    }
  };
  signal('SIGTERM');
  const held = await take(15_000).catch(() => undefined);
  if (held) return held;
  signal('SIGKILL');
  return take(5_000);
}

async function destroy(state: ClusterState, opts: { force?: boolean; keepFolder?: boolean }): Promise<string[]> {
  await updateState(state.name, state.id, (s) => void (s.phase = 'destroying')).catch(() => undefined);
  await stopAgent(state.name);
  const report = await providerFor(state).removeByLabel({ id: state.id });
  if (!opts.force) failOnLeftovers(state, report, `slurmkit down ${state.name}`);
  const root = ClusterPaths.of(state.name).root;
  if (opts.keepFolder) {
    // Everything but the locks this command holds.
    for (const entry of await readdir(root)) if (!entry.endsWith('.lock')) await rm(join(root, entry), { recursive: true, force: true });
  } else {
    await rm(root, { recursive: true, force: true });
  }
  if (report.failed.length > 0) failOnLeftovers(state, report, `slurmkit gc`);
  return report.removed;
}

/**
 * Removes resources labeled by slurmkit whose cluster no longer exists. A cluster whose folder
 * exists is never touched, even when its state cannot be read: only `down NAME --force` removes it.
 */
export async function gc(): Promise<LeftoverReport> {
  const entries = await listClusterEntries();
  const select = {
    home: homeTag(),
    keepIds: entries.flatMap((e) => (e.state ? [e.state.id] : [])),
    keepNames: entries.filter((e) => !e.state).map((e) => e.name),
  };
  const report: LeftoverReport = { found: [], removed: [], failed: [] };
  // Swarm hosts too: those of the clusters that exist and those clusters of this home ever used.
  const hosts = [...(await listStates()).flatMap((s) => s.hosts ?? []), ...(await knownHosts())].filter((h, i, all) => all.findIndex((x) => x.endpoint === h.endpoint) === i);
  for (const provider of allProviders(hosts)) {
    const r = await provider.removeByLabel(select);
    report.found.push(...r.found);
    report.removed.push(...r.removed);
    report.failed.push(...r.failed);
  }
  return report;
}
