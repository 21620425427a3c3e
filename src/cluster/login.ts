/**
 * The login node: where a cluster's users work, outside Slurm's compute nodes, with a Jupyter
 * notebook server per user when the spec asks for it (see layout.ts for what the node runs).
 */
import { access, constants, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { SlurmkitError } from '../util/errors.js';
import { waitFor } from '../util/run.js';
import { JUPYTER_PORT } from './layout.js';
import { ClusterPaths } from './paths.js';
import type { ClusterState, NodeRecord } from './state.js';

export const loginOf = (state: ClusterState): NodeRecord | undefined => state.nodes.find((n) => n.role === 'login');

/** Where each user's Jupyter server listens, in the order of the spec's users. */
export function jupyterEndpoints(state: ClusterState): { user: string; address: string; port: number }[] {
  const login = loginOf(state);
  if (!login?.jupyter) return [];
  return (state.site?.users ?? []).map((user, i) => ({ user, address: login.address, port: JUPYTER_PORT + i }));
}

export interface JupyterAccess {
  cluster: string;
  user: string;
  node: string;
  address: string;
  port: number;
  /** The URL with the user's token: whoever has it is that user in Jupyter. */
  url: string;
}

/** A user's Jupyter URL with its token, read from the cluster's secrets (the owner's alone). */
export async function jupyterAccess(state: ClusterState, user: string): Promise<JupyterAccess> {
  const login = loginOf(state);
  if (!login?.jupyter) {
    throw new SlurmkitError('NOT_FOUND', `cluster ${state.name} has no Jupyter server: its spec has no login node with jupyter: true`, {
      hint: 'add login: {jupyter: true} to the spec (with users) and make the cluster again',
    });
  }
  const endpoint = jupyterEndpoints(state).find((e) => e.user === user);
  if (!endpoint) {
    throw new SlurmkitError('NOT_FOUND', `--user ${user}: not a user of cluster ${state.name}`, {
      hint: `its users: ${(state.site?.users ?? []).join(', ')}`,
    });
  }
  const token = (await readFile(join(ClusterPaths.of(state.name).jupyterTokens, user), 'utf8')).trim();
  return { cluster: state.name, user, node: login.name, address: endpoint.address, port: endpoint.port, url: `http://${endpoint.address}:${endpoint.port}/?token=${token}` };
}

/** Waits until every user's Jupyter server answers its API (with the user's token). */
export async function waitJupyter(state: ClusterState, timeoutMs = 60_000, signal?: AbortSignal): Promise<void> {
  const pending = new Set(jupyterEndpoints(state).map((e) => e.user));
  await waitFor(
    'Jupyter to answer on the login node',
    async () => {
      for (const user of [...pending]) {
        const { url } = await jupyterAccess(state, user);
        const api = url.replace('/?token=', '/api/status?token=');
        const ok = await fetch(api, { signal: AbortSignal.timeout(2000) })
          .then((r) => r.ok)
          .catch(() => false);
        if (ok) pending.delete(user);
      }
      return pending.size === 0 ? true : undefined;
    },
    { timeoutMs, intervalMs: 100, maxIntervalMs: 250, describe: () => `not yet: ${[...pending].join(', ')}`, ...(signal ? { signal } : {}) },
  );
}

/** What a login node with Jupyter runs (the local provider's nodes run this machine's programs). */
const JUPYTER_PROGRAMS = ['jupyter-notebook', 'python3'];

/** Refuses a login node with Jupyter on a machine without it, before anything is made. */
export async function checkJupyterInstalled(): Promise<void> {
  const dirs = (process.env.PATH ?? '/usr/bin:/bin').split(':').filter(Boolean);
  for (const program of JUPYTER_PROGRAMS) {
    const found = await Promise.any(dirs.map((d) => access(join(d, program), constants.X_OK))).then(
      () => true,
      () => false,
    );
    if (!found) {
      throw new SlurmkitError('PRECONDITION', `login.jupyter: ${program} is not installed on this machine`, {
        hint: 'apt-get install jupyter-notebook python3-ipykernel python3-cloudpickle (scripts/setup.sh installs them), or set jupyter: false',
      });
    }
  }
}
