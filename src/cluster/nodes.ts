/**
 * Reaching a cluster's nodes: its label, its provider, its head, commands in the head. Below
 * the lifecycle, so that services on the head (blob storage, REST) and the lifecycle can both
 * use it without importing each other.
 */
import type { ClusterLabel, ExecResult, NodeProvider, ProviderOptions } from '../providers/types.js';
import { runInNode, type HeadCommand } from './head-channel.js';
import { providerFor as providerOfKind } from '../providers/registry.js';
import { parseSinfoNodes, SINFO_NODE_ARGS, type NodeSlurmState } from '../slurm/status.js';
import { SlurmkitError } from '../util/errors.js';
import { homeTag } from './paths.js';
import type { ClusterState, NodeRecord } from './state.js';

export const labelOf = (s: { name: string; id: string }): ClusterLabel => ({ name: s.name, id: s.id, home: homeTag() });

/** The provider that runs this cluster's nodes, from the registry (tests may override it there). */
/** What a cluster's provider is made with: a swarm's hosts and registry. */
export function optionsOfState(state: Pick<ClusterState, 'hosts' | 'registry'>): ProviderOptions {
  return state.hosts ? { hosts: state.hosts, ...(state.registry ? { registry: state.registry } : {}) } : {};
}

export function providerFor(state: Pick<ClusterState, 'provider' | 'hosts' | 'registry'>): NodeProvider {
  return providerOfKind(state.provider, optionsOfState(state));
}

/** Slurm's view of the workers, from inside the head. Undefined while slurmctld does not answer. */
export async function slurmNodes(state: ClusterState): Promise<NodeSlurmState[] | undefined> {
  const r = await execInHead(state, { command: ['sinfo', ...SINFO_NODE_ARGS] }).catch(() => undefined);
  if (!r || r.exitCode !== 0) return undefined;
  return parseSinfoNodes(r.stdout);
}

/** Runs a command in the head (through its command channel in a process that keeps them, see head-channel.ts); the result as it is. */
export function execInHead(state: ClusterState, cmd: HeadCommand): Promise<ExecResult> {
  return runInNode(providerFor(state), labelOf(state), headOf(state).name, cmd);
}

/** Runs a shell command as root in the head and returns its stdout; a non-zero exit is COMMAND_FAILED. */
export async function runInHead(state: ClusterState, command: string): Promise<string> {
  const head = headOf(state).name;
  const r = await execInHead(state, { command: ['bash', '-c', command] });
  if (r.exitCode !== 0) {
    throw new SlurmkitError('COMMAND_FAILED', `\`${command}\` on ${head} exited with ${r.exitCode}: ${r.stderr.trim()}`);
  }
  return r.stdout;
}

export const headOf = (state: ClusterState): NodeRecord => state.nodes.find((n) => n.role === 'head')!;
