import { readFile, rename, writeFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { NetworkPlan } from '../spec/types.js';
import { ClusterPaths, slurmkitHome } from './paths.js';
import { SlurmkitError } from '../util/errors.js';
import type { SiteFeatures } from './site.js';
import type { StorageConfig } from '../spec/types.js';

export type ClusterPhase = 'creating' | 'running' | 'stopping' | 'stopped' | 'starting' | 'failed' | 'destroying';

export interface NodeRecord {
  name: string;
  role: 'head' | 'worker';
  /** Stable index for host-side interface names. */
  index: number;
  address: string;
}

export interface PhaseTiming {
  phase: string;
  ms: number;
}

export interface ClusterState {
  version: 1;
  name: string;
  id: string;
  provider: 'local';
  createdAt: string;
  updatedAt: string;
  phase: ClusterPhase;
  network: NetworkPlan & { bridge: string };
  nodes: NodeRecord[];
  /** Accounting, REST and users, fixed at up (absent in clusters made before they existed). */
  site?: SiteFeatures;
  /** Blob storage from the spec; clusters made before it existed have Azurite on first use. */
  storage?: StorageConfig;
  /** Timings of the last lifecycle command. */
  timings: PhaseTiming[];
  /** The last error, when phase is failed. */
  error?: string;
}

/** Written to a temporary file and renamed, so a crash never leaves a half-written state. */
export async function saveState(state: ClusterState): Promise<void> {
  const paths = ClusterPaths.of(state.name);
  state.updatedAt = new Date().toISOString();
  const tmp = `${paths.state}.tmp`;
  await writeFile(tmp, `${JSON.stringify(state, null, 2)}\n`, { mode: 0o600 });
  await rename(tmp, paths.state);
}

export async function readState(name: string): Promise<ClusterState | undefined> {
  const file = ClusterPaths.of(name).state;
  try {
    return JSON.parse(await readFile(file, 'utf8')) as ClusterState;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new SlurmkitError('CONFLICT', `cannot read the state of cluster ${name}: ${(err as Error).message}`, {
      hint: `slurmkit down ${name} --force removes the cluster and whatever it left running anyway`,
    });
  }
}

export async function requireState(name: string): Promise<ClusterState> {
  const state = await readState(name);
  if (!state) {
    const names = (await listStates()).map((s) => s.name);
    throw new SlurmkitError('NOT_FOUND', `no cluster named "${name}"`, {
      hint: names.length ? `existing clusters: ${names.join(', ')}` : 'create one with: slurmkit up --template lab',
    });
  }
  return state;
}

export async function listStates(): Promise<ClusterState[]> {
  let names: string[];
  try {
    names = await readdir(join(slurmkitHome(), 'clusters'));
  } catch {
    return [];
  }
  const states = await Promise.all(names.map((n) => readState(n).catch(() => undefined)));
  return states.filter((s): s is ClusterState => s !== undefined).sort((a, b) => a.name.localeCompare(b.name));
}
