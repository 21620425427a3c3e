/** Running as a cluster user (`--user`): who may be named, and the folder and environment they get. */
import type { ClusterState } from '../cluster/state.js';
import { SlurmkitError } from '../util/errors.js';

export interface AsUser {
  cwd: string;
  user?: string;
  env?: Record<string, string>;
}

/** A spec user runs in their home with their HOME, USER and LOGNAME; root (or none) in `rootCwd`. */
export function asClusterUser(state: ClusterState, user: string | undefined, rootCwd: string): AsUser {
  if (user === undefined || user === 'root') return { cwd: rootCwd };
  const users = state.site?.users ?? [];
  if (!users.includes(user)) {
    throw new SlurmkitError('NOT_FOUND', `cluster ${state.name} has no user "${user}"`, {
      hint: users.length ? `users: ${users.join(', ')}` : 'add users to the spec (users: [{name: alice}]) and create the cluster again',
    });
  }
  return { cwd: `/home/${user}`, user, env: { HOME: `/home/${user}`, USER: user, LOGNAME: user } };
}
