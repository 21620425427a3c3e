/**
 * Live scaling: workers added to and taken from a running cluster, with no restart of Slurm and
 * running jobs untouched. A new node is told to slurmctld with `scontrol create` (State=FUTURE,
 * at its planned NodeAddr, so no name is ever looked up) and to the partitions that take its
 * whole group, then made by the provider like any node; slurm.conf and every node's /etc/hosts
 * are rewritten so that names resolve everywhere and a later restart of slurmctld knows it.
 * A node is taken away by draining it with a reason tagged as slurmkit's, waiting for its jobs
 * (or requeueing them), destroying it and forgetting it in Slurm and in the state.
 */
import { readFile } from 'node:fs/promises';
import { FIRST_WORKER_OFFSET, type ClusterConfig, type NodeConfig } from '../spec/types.js';
import { parseSpec } from '../spec/load.js';
import { dynamicConf, nodeDefinition } from '../slurm/render.js';
import { compressHostlist, expandHostlist } from '../slurm/hostlist.js';
import { isReady, type NodeSlurmState } from '../slurm/status.js';
import { SlurmkitError } from '../util/errors.js';
import { Progress } from '../util/progress.js';
import { waitFor } from '../util/run.js';
import { ClusterPaths } from './paths.js';
import { headOf, labelOf, providerFor, runInHead, slurmNodes } from './nodes.js';
import { updateState, type ClusterState, type NodeRecord } from './state.js';
import { configFrom, createInOrder, holding, renderConfig, usableState } from './lifecycle.js';
import { placeAdded } from './placement.js';
import { intToIp, parseCidr } from './subnet.js';

/** Begins the reason of every drain slurmkit sets; a drain with any other reason is someone else's and never undone. */
export const DRAIN_TAG = 'slurmkit:';


/** The cluster's spec as it was given at up, with the name and provider it was made with. */
async function specConfig(state: ClusterState): Promise<ClusterConfig> {
  const paths = ClusterPaths.of(state.name);
  const text = await readFile(paths.spec, 'utf8');
  return parseSpec(text, paths.spec, { name: state.name, ...(state.provider === 'swarm' ? {} : { provider: state.provider }) });
}

/** The group of a worker: kept in the state, or (clusters made before it was kept) the spec's. */
function groupOf(record: NodeRecord, config: ClusterConfig): string {
  const group = record.group ?? config.nodes.find((n) => n.name === record.name)?.group;
  if (!group) throw new SlurmkitError('INTERNAL', `node ${record.name} belongs to no group of the cluster's spec`);
  return group;
}

/**
 * The configuration of the cluster as it runs: the spec's groups and partitions over the workers
 * of the state. A partition that takes every node of a group (nodes: all, or {group: NAME}) takes
 * the group's added nodes too; one that names nodes keeps those of them that are left.
 */
export function runningConfig(config: ClusterConfig, workers: readonly { name: string; group: string }[]): ClusterConfig {
  const groups = new Map(config.groups.map((g) => [g.name, g]));
  const nodes: NodeConfig[] = workers.map((w) => {
    const g = groups.get(w.group);
    if (!g) throw new SlurmkitError('INTERNAL', `node ${w.name}: no group ${w.group} in the cluster's spec`);
    return { name: w.name, group: g.name, cpus: g.cpus, memoryMiB: g.memoryMiB, features: [...g.features] };
  });
  const partitions = config.partitions.map((p) => {
    const listed = new Set(p.nodes);
    const whole = new Set(config.groups.filter((g) => config.nodes.some((n) => n.group === g.name) && config.nodes.filter((n) => n.group === g.name).every((n) => listed.has(n.name))).map((g) => g.name));
    return { ...p, nodes: nodes.filter((n) => listed.has(n.name) || whole.has(n.group)).map((n) => n.name) };
  });
  return { ...config, nodes, partitions };
}

function configOf(config: ClusterConfig, state: ClusterState): ClusterConfig {
  return runningConfig(
    config,
    state.nodes.filter((n) => n.role === 'worker').map((n) => ({ name: n.name, group: groupOf(n, config) })),
  );
}

/** The node group `--group` names; may be left out when the cluster has one. USAGE otherwise, naming the groups. */
function chosenGroup(spec: ClusterConfig, wanted: string | undefined): ClusterConfig['groups'][number] {
  const names = spec.groups.map((g) => g.name);
  if (wanted === undefined && names.length > 1) {
    throw new SlurmkitError('USAGE', `cluster ${spec.name} has ${names.length} node groups (${names.join(', ')}); say which with --group`, { hint: `e.g. --group ${names[0]}` });
  }
  const group = spec.groups.find((g) => g.name === (wanted ?? names[0]));
  if (!group) throw new SlurmkitError('USAGE', `--group ${wanted}: cluster ${spec.name} has no such node group`, { hint: `its groups: ${names.join(', ')}` });
  return group;
}

/**
 * Manual scaling of a cluster that autoscales is refused: Slurm 22.05 fixes SuspendExcNodes when
 * slurmctld starts, so a node added by hand would be powered down by autoscaling when idle.
 */
function refuseAutoscaled(state: ClusterState, verb: string): void {
  if (state.cloud?.length) {
    throw new SlurmkitError('CONFLICT', `cluster ${state.name} autoscales (nodes ${compressHostlist(state.cloud.map((n) => n.name))}); ${verb} would fight autoscaling`, {
      hint: 'change the group\'s autoscale.minNodes/maxNodes in the spec and make the cluster again, or power nodes with: scontrol update NodeName=... State=POWER_UP|POWER_DOWN_ASAP',
    });
  }
}

function requireRunning(state: ClusterState, verb: string): void {
  if (state.phase !== 'running') {
    throw new SlurmkitError('CONFLICT', `cluster ${state.name} is ${state.phase}; ${verb} needs it running`, { hint: `start it first: slurmkit start ${state.name}` });
  }
}

/**
 * Rewrites the cluster's configuration for the nodes it has now: slurm.conf (read by slurmctld
 * when it restarts) and /etc/hosts in every running node. Nodes that share this machine read both
 * from the cluster folder; the others get them written into them.
 */
async function rewriteFiles(state: ClusterState, config: ClusterConfig): Promise<void> {
  const paths = ClusterPaths.of(state.name);
  await renderConfig(state, config, paths);
  if (configFrom(state) === undefined) return;
  const provider = providerFor(state);
  const running = new Set((await provider.list(labelOf(state))).filter((n) => n.running).map((n) => n.hostname));
  const hosts = await readFile(paths.hosts, 'utf8');
  const slurmConf = await readFile(paths.slurmConf, 'utf8');
  const put = async (node: string, path: string, content: string) => {
    // Written in place (not renamed over): /etc/hosts is a file the container engine mounted.
    const r = await provider.exec({ label: labelOf(state), node, command: ['sh', '-c', `cat > ${path}`], stdio: 'capture', input: content });
    if (r.exitCode !== 0) throw new SlurmkitError('COMMAND_FAILED', `could not write ${path} in ${node}: ${r.stderr.trim()}`);
  };
  await Promise.all(state.nodes.filter((n) => running.has(n.name)).map((n) => put(n.name, '/etc/hosts', hosts)));
  // The login node's clients read slurm.conf themselves (no slurmd there to fetch it).
  const logins = state.nodes.filter((n) => n.role === 'login' && running.has(n.name));
  await Promise.all([headOf(state), ...logins].map((n) => put(n.name, '/etc/slurm/slurm.conf', slurmConf)));
}

/** `scontrol update PartitionName=...` for each partition whose nodes differ between two configurations. */
function partitionUpdates(before: ClusterConfig, after: ClusterConfig): string[] {
  return after.partitions.flatMap((p) => {
    const old = before.partitions.find((q) => q.name === p.name);
    if (old && old.nodes.join(',') === p.nodes.join(',')) return [];
    return [`scontrol update PartitionName=${p.name} Nodes=${compressHostlist(p.nodes)}`];
  });
}

/** The first free worker addresses of the cluster's subnet. */
function freeAddresses(state: ClusterState, count: number): string[] {
  const { start, size } = parseCidr(state.network.subnet);
  const used = new Set(state.nodes.map((n) => n.address));
  const out: string[] = [];
  for (let i = start + FIRST_WORKER_OFFSET; i < start + size - 1 && out.length < count; i++) {
    if (!used.has(intToIp(i))) out.push(intToIp(i));
  }
  if (out.length < count) {
    throw new SlurmkitError('PRECONDITION', `subnet ${state.network.subnet} of cluster ${state.name} has room for ${out.length} more node(s), not ${count}`, {
      hint: 'add fewer nodes, or make the cluster again with a larger network.subnet (a shorter prefix)',
    });
  }
  return out;
}

export interface AddOptions {
  /** The node group; may be left out when the cluster has one. */
  group?: string;
  count: number;
  progress?: Progress;
  /** How long to wait for the new nodes to be idle. */
  readyTimeoutMs?: number;
}

export interface ScaleResult {
  state: ClusterState;
  /** Nodes added, or taken away. */
  nodes: string[];
  /** Jobs requeued from nodes taken away with force. */
  requeued?: string[];
}

/** Adds workers to a running cluster; returns when they are idle in Slurm. On failure, removes what it made. */
export async function addNodes(name: string, opts: AddOptions): Promise<ScaleResult> {
  const progress = opts.progress ?? Progress.silent();
  return holding(name, 'add-node', async () => {
    let state = await usableState(name, 'add nodes');
    requireRunning(state, 'add-node');
    refuseAutoscaled(state, 'add-node');
    const provider = providerFor(state);
    if (!provider.capabilities.scale) {
      throw new SlurmkitError('UNSUPPORTED', `provider ${state.provider} cannot add nodes to a running cluster`);
    }
    const spec = await specConfig(state);
    const group = chosenGroup(spec, opts.group);
    if (!Number.isInteger(opts.count) || opts.count < 1) {
      throw new SlurmkitError('USAGE', `--count ${opts.count}: give a whole number of nodes, 1 or more`);
    }
    const before = configOf(spec, state);
    // The lowest free names of the group: a node taken away leaves its name for the next one.
    const taken = new Set(state.nodes.map((n) => n.name));
    const names: string[] = [];
    for (let i = 1; names.length < opts.count; i++) if (!taken.has(`${group.name}${i}`)) names.push(`${group.name}${i}`);
    const addresses = freeAddresses(state, opts.count);
    const workers = state.nodes.filter((n) => n.role === 'worker');
    const hosts = placeAdded(spec.provider, (state.hosts ?? []).map((h) => h.name), workers.map((w) => w.host), opts.count);
    const firstIndex = Math.max(...state.nodes.map((n) => n.index)) + 1;
    const configless = configFrom(state) !== undefined;
    const added: NodeRecord[] = names.map((n, i) => {
      const conf: NodeConfig = { name: n, group: group.name, cpus: group.cpus, memoryMiB: group.memoryMiB, features: group.features };
      return {
        name: n,
        role: 'worker',
        index: firstIndex + i,
        address: addresses[i]!,
        group: group.name,
        ...(hosts ? { host: hosts[i]! } : {}),
        ...(configless ? { slurmdConf: dynamicConf(conf) } : {}),
      };
    });
    progress.info(`  adding ${names.join(', ')} (group ${group.name}) at ${addresses.join(', ')}${hosts ? ` on ${hosts.join(', ')}` : ''}`);
    // Recorded first: whatever happens next, `down` and the rollback below find these nodes.
    state = await updateState(name, state.id, (s) => {
      s.nodes.push(...added);
      for (const n of added) s.network.addresses[n.name] = n.address;
    });
    const after = configOf(spec, state);
    try {
      await progress.phase('tell slurmctld', async () => {
        await rewriteFiles(state, after);
        // scontrol create exits 0 even when slurmctld refuses the node (a full node table, say): each is looked up after.
        const create = after.nodes
          .filter((n) => names.includes(n.name))
          .map((n) => `scontrol create ${nodeDefinition(n, state.network.addresses[n.name]!, 'FUTURE')}; scontrol --future show node ${n.name} >/dev/null || { echo "slurmctld did not take node ${n.name}: $(grep -o 'error: .*${n.name}.*' /var/log/slurm/slurmctld.log | tail -1)" >&2; exit 1; }`);
        await runInHead(state, ['set -e', ...create, ...partitionUpdates(before, after)].join('\n'));
      });
      await createInOrder(state, added, progress, []);
      await progress.phase(`wait for ${names.length} node(s) idle`, () => waitNodes(state, names, opts.readyTimeoutMs ?? 60_000, progress.signal));
    } catch (err) {
      await progress
        .phase('take the new nodes away again', () => forget(state, spec, names, { destroy: true }), { always: true })
        .catch((e: unknown) => progress.info(`  could not take them away: ${(e as Error).message}; run: slurmkit remove-node ${name} ${names.join(' ')}`));
      throw err;
    }
    state = await updateState(name, state.id, (s) => void (s.timings = progress.timings));
    return { state, nodes: names };
  });
}

/**
 * Waits until Slurm calls each of these nodes idle. A node that registers while Slurm still
 * has it as FUTURE (it was created a moment before) is resumed, which Slurm allows once.
 */
async function waitNodes(state: ClusterState, names: string[], timeoutMs: number, signal?: AbortSignal): Promise<void> {
  let last: NodeSlurmState[] | undefined;
  let resumed = false;
  await waitFor(
    `${names.join(', ')} to be idle in Slurm`,
    async () => {
      last = await slurmNodes(state);
      if (!last) return undefined;
      const ready = new Set(last.filter(isReady).map((n) => n.name));
      if (names.every((n) => ready.has(n))) return true;
      // sinfo does not list a node while it is FUTURE.
      const future = names.filter((n) => !last!.some((x) => x.name === n));
      if (future.length > 0 && !resumed) {
        resumed = true;
        await runInHead(state, `scontrol update NodeName=${compressHostlist(future)} State=RESUME`).catch(() => undefined);
      }
      return undefined;
    },
    {
      timeoutMs,
      intervalMs: 30,
      maxIntervalMs: 200,
      ...(signal ? { signal } : {}),
      describe: () => (last ? names.map((n) => `${n}=${last!.find((x) => x.name === n)?.state ?? 'unknown'}`).join(' ') : 'slurmctld not answering'),
    },
  );
}

/**
 * Takes nodes out of Slurm and of the state, and (with `destroy`) away from the provider. A node
 * added while the cluster ran is deleted from slurmctld; one slurm.conf listed when slurmctld
 * started cannot be deleted in Slurm 22.05: it goes back to FUTURE (hidden, never scheduled)
 * until slurmctld restarts with the rewritten slurm.conf.
 */
async function forget(state: ClusterState, spec: ClusterConfig, names: string[], opts: { destroy: boolean }): Promise<ClusterState> {
  const before = configOf(spec, state);
  const keep = state.nodes.filter((n) => !names.includes(n.name));
  const after = runningConfig(spec, keep.filter((n) => n.role === 'worker').map((n) => ({ name: n.name, group: groupOf(n, spec) })));
  if (opts.destroy) await providerFor(state).destroyNodes(labelOf(state), names, { graceMs: 5_000 });
  const hostlist = compressHostlist(names);
  await runInHead(
    state,
    [
      ...partitionUpdates(before, after),
      `scontrol delete NodeName=${hostlist} 2>/dev/null || scontrol update NodeName=${hostlist} State=FUTURE 2>/dev/null || true`,
    ].join('\n'),
  ).catch(() => undefined);
  const next = await updateState(state.name, state.id, (s) => {
    s.nodes = s.nodes.filter((n) => !names.includes(n.name));
    for (const n of names) delete s.network.addresses[n];
  });
  await rewriteFiles(next, after);
  return next;
}

/** Partitions that would be left with no node, named with the fix. */
function refuseEmptyPartitions(spec: ClusterConfig, state: ClusterState, names: string[]): void {
  const keep = state.nodes.filter((n) => n.role === 'worker' && !names.includes(n.name));
  const after = runningConfig(spec, keep.map((n) => ({ name: n.name, group: groupOf(n, spec) })));
  const empty = after.partitions.filter((p) => p.nodes.length === 0).map((p) => p.name);
  if (empty.length > 0) {
    throw new SlurmkitError('CONFLICT', `without ${names.join(', ')}, partition ${empty.join(', ')} would have no node`, { hint: 'keep at least one node in every partition' });
  }
}

/** The workers named, or USAGE naming those the cluster does not have. */
function workersNamed(state: ClusterState, names: string[], verb: string): string[] {
  const expanded = names.flatMap((n) => expandHostlist(n));
  if (expanded.length === 0) throw new SlurmkitError('USAGE', `${verb}: name at least one node`);
  const workers = new Set(state.nodes.filter((n) => n.role === 'worker').map((n) => n.name));
  const unknown = expanded.filter((n) => !workers.has(n));
  if (unknown.length > 0) {
    const head = unknown.includes(headOf(state).name) ? ` (${headOf(state).name} is the head, which stays with the cluster)` : '';
    throw new SlurmkitError('NOT_FOUND', `cluster ${state.name} has no worker ${unknown.join(', ')}${head}`, { hint: `see its nodes: slurmkit list-nodes ${state.name}` });
  }
  return [...new Set(expanded)];
}

export interface TerminateOptions {
  /** Requeue the nodes' jobs and take the nodes away now, instead of waiting for the jobs to end. */
  force?: boolean;
  progress?: Progress;
}

/** Jobs with a step or an allocation on each of these nodes, from squeue. */
async function jobsOn(state: ClusterState, names: string[]): Promise<Map<string, string[]>> {
  const out = await runInHead(state, `squeue -h -t RUNNING,COMPLETING,CONFIGURING,SUSPENDED,STOPPED -o '%i|%N'`);
  const jobs = new Map(names.map((n) => [n, [] as string[]]));
  for (const line of out.split('\n')) {
    const [id, nodes] = line.trim().split('|');
    if (!id || !nodes) continue;
    for (const n of expandHostlist(nodes)) jobs.get(n)?.push(id);
  }
  return jobs;
}

/**
 * Takes workers away from a running cluster: drains them (reason tagged as slurmkit's), waits
 * for their jobs to end (or, with force, requeues them), destroys them and forgets them.
 * Interrupted while waiting, it undoes its own drain.
 */
export async function terminateNodes(name: string, nodeNames: string[], opts: TerminateOptions = {}): Promise<ScaleResult> {
  const progress = opts.progress ?? Progress.silent();
  return holding(name, 'terminate-node', async () => {
    const state = await usableState(name, 'terminate nodes');
    requireRunning(state, 'terminate-node');
    refuseAutoscaled(state, 'terminate-node');
    const names = workersNamed(state, nodeNames, 'terminate-node');
    const spec = await specConfig(state);
    refuseEmptyPartitions(spec, state, names);
    return takeAway(state, spec, names, opts.force ?? false, progress);
  });
}

async function takeAway(state: ClusterState, spec: ClusterConfig, names: string[], force: boolean, progress: Progress): Promise<ScaleResult> {
  const hostlist = compressHostlist(names);
  const reason = `${DRAIN_TAG} terminate-node`;
  // A node someone else drained keeps their reason; slurmkit drains the others.
  const slurm = (await slurmNodes(state)) ?? [];
  const ours = names.filter((n) => !slurm.find((x) => x.name === n)?.state.startsWith('drain'));
  if (ours.length > 0) {
    await progress.phase(`drain ${compressHostlist(ours)}`, () => runInHead(state, `scontrol update NodeName=${compressHostlist(ours)} State=DRAIN Reason='${reason}'`));
  }
  let requeued: string[] = [];
  try {
    if (force) {
      const jobs = [...new Set([...(await jobsOn(state, names)).values()].flat())];
      if (jobs.length > 0) {
        // A job that cannot be requeued (--no-requeue, or an interactive allocation) is ended by Slurm when its node goes.
        await progress.phase(`requeue ${jobs.length} job(s)`, () => runInHead(state, `for j in ${jobs.join(' ')}; do scontrol requeue $j 2>/dev/null || scancel $j; done`));
        requeued = jobs;
      }
    } else {
      let lastSaid = 0;
      await progress.phase(`wait for the jobs on ${hostlist}`, () =>
        waitFor(
          `the jobs on ${hostlist} to end`,
          async () => {
            const jobs = [...new Set([...(await jobsOn(state, names)).values()].flat())];
            if (jobs.length === 0) return true;
            if (Date.now() - lastSaid > 10_000) {
              lastSaid = Date.now();
              progress.info(`  waiting for job(s) ${jobs.join(', ')}`);
            }
            return undefined;
          },
          { timeoutMs: 365 * 24 * 3600_000, intervalMs: 250, maxIntervalMs: 1_000, ...(progress.signal ? { signal: progress.signal } : {}) },
        ),
      );
    }
  } catch (err) {
    // Not taken away after all: slurmkit's own drain is undone, nobody else's.
    await runInHead(state, ours.map((n) => `sinfo -h -n ${n} -o %E | grep -q '^${DRAIN_TAG}' && scontrol update NodeName=${n} State=RESUME`).join('\n') + '\ntrue').catch(() => undefined);
    throw err;
  }
  const next = await progress.phase(`remove ${hostlist}`, () => forget(state, spec, names, { destroy: true }));
  return { state: next, nodes: names, ...(requeued.length > 0 ? { requeued } : {}) };
}

/** Forgets workers whose machines are gone (a node that still runs is refused: terminate-node takes it away). */
export async function removeNodes(name: string, nodeNames: string[], opts: { progress?: Progress } = {}): Promise<ScaleResult> {
  const progress = opts.progress ?? Progress.silent();
  return holding(name, 'remove-node', async () => {
    const state = await usableState(name, 'remove nodes');
    refuseAutoscaled(state, 'remove-node');
    const names = workersNamed(state, nodeNames, 'remove-node');
    const running = (await providerFor(state).list(labelOf(state))).filter((n) => n.running && names.includes(n.hostname)).map((n) => n.hostname);
    if (running.length > 0) {
      throw new SlurmkitError('CONFLICT', `${running.join(', ')} still run${running.length === 1 ? 's' : ''}; remove-node forgets nodes whose machine is gone`, {
        hint: `take ${running.length === 1 ? 'it' : 'them'} away with: slurmkit terminate-node ${name} ${running.join(' ')}`,
      });
    }
    const spec = await specConfig(state);
    refuseEmptyPartitions(spec, state, names);
    const next = await progress.phase(`forget ${compressHostlist(names)}`, () => forget(state, spec, names, { destroy: true }));
    return { state: next, nodes: names };
  });
}

/**
 * Victims when a group shrinks: idle nodes first, then those with the fewest running jobs; the
 * newest (highest index) first among equals. Never at random.
 */
export function pickVictims(candidates: readonly { name: string; index: number; idle: boolean; jobs: number }[], count: number): string[] {
  return [...candidates]
    .sort((a, b) => Number(b.idle) - Number(a.idle) || a.jobs - b.jobs || b.index - a.index)
    .slice(0, count)
    .map((c) => c.name);
}

/** Brings a group to `count` workers: adds nodes, or takes away the ones pickVictims chooses (waiting for their jobs unless forced). */
export async function resize(name: string, opts: { group?: string; count: number; force?: boolean; progress?: Progress; readyTimeoutMs?: number }): Promise<ScaleResult & { change: number }> {
  const progress = opts.progress ?? Progress.silent();
  const state = await usableState(name, 'resize');
  refuseAutoscaled(state, 'resize');
  const spec = await specConfig(state);
  const group = chosenGroup(spec, opts.group).name;
  if (!Number.isInteger(opts.count) || opts.count < 0) throw new SlurmkitError('USAGE', `--count ${opts.count}: give a whole number of nodes, 0 or more`);
  const members = state.nodes.filter((n) => n.role === 'worker' && groupOf(n, spec) === group);
  const change = opts.count - members.length;
  if (change > 0) {
    const r = await addNodes(name, { group, count: change, progress, ...(opts.readyTimeoutMs ? { readyTimeoutMs: opts.readyTimeoutMs } : {}) });
    return { ...r, change };
  }
  if (change === 0) return { state, nodes: [], change };
  return holding(name, 'resize', async () => {
    const current = await usableState(name, 'resize');
    requireRunning(current, 'resize');
    const slurm = (await slurmNodes(current)) ?? [];
    const jobs = await jobsOn(current, members.map((m) => m.name));
    const victims = pickVictims(
      members.map((m) => ({ name: m.name, index: m.index, idle: slurm.find((x) => x.name === m.name)?.state === 'idle', jobs: jobs.get(m.name)?.length ?? 0 })),
      -change,
    );
    refuseEmptyPartitions(spec, current, victims);
    progress.info(`  taking away ${victims.join(', ')}`);
    const r = await takeAway(current, spec, victims, opts.force ?? false, progress);
    return { ...r, change };
  });
}
