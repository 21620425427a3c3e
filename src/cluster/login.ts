/**
 * The login node: where a cluster's users work, outside Slurm's compute nodes, with a Jupyter
 * notebook server per user when the spec asks for it (see layout.ts for what the node runs).
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { SlurmkitError } from '../util/errors.js';
import { waitFor, which } from '../util/run.js';
import { JUPYTER_PORT } from './layout.js';
import { labelOf, providerFor } from './nodes.js';
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
  // Where this machine reaches it: the login node's address, or where the provider published the port (swarm).
  const at = await providerFor(state).reach(labelOf(state), login.name, endpoint.address, endpoint.port);
  return { cluster: state.name, user, node: login.name, address: at.address, port: at.port, url: `http://${at.address}:${at.port}/?token=${token}` };
}

/** Waits until every user's Jupyter server answers its API (with the user's token). */
export async function waitJupyter(state: ClusterState, timeoutMs = 60_000, signal?: AbortSignal): Promise<void> {
  // Each user's URL (its token read once), until that user's server answers.
  const pending = new Map((await Promise.all(jupyterEndpoints(state).map((e) => jupyterAccess(state, e.user)))).map((a) => [a.user, a.url.replace('/?token=', '/api/status?token=')]));
  await waitFor(
    'Jupyter to answer on the login node',
    async () => {
      for (const [user, api] of [...pending]) {
        const ok = await fetch(api, { signal: AbortSignal.timeout(2000) })
          .then((r) => r.ok)
          .catch(() => false);
        if (ok) pending.delete(user);
      }
      return pending.size === 0 ? true : undefined;
    },
    { timeoutMs, intervalMs: 100, maxIntervalMs: 250, describe: () => `not yet: ${[...pending.keys()].join(', ')}`, ...(signal ? { signal } : {}) },
  );
}

/** Refuses a login node with Jupyter on a machine without it (the local provider's nodes run this machine's programs), before anything is made. */
export async function checkJupyterInstalled(): Promise<void> {
  for (const program of ['jupyter-notebook', 'python3']) {
    if (!(await which(program))) {
      throw new SlurmkitError('PRECONDITION', `login.jupyter: ${program} is not installed on this machine`, {
        hint: 'apt-get install jupyter-notebook python3-ipykernel python3-cloudpickle (scripts/setup.sh installs them), or set jupyter: false',
      });
    }
  }
}
