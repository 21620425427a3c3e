/**
 * /etc/passwd and /etc/group for the nodes of a cluster: the host's system accounts (so files
 * owned by daemons still show their owner's name and services keep working) plus the cluster's
 * users and groups. The host's own people stay out: on a shared filesystem a host user with
 * the same name or id as a cluster user would otherwise own that user's files.
 *
 * System entries are those with an id outside Debian's human range 1000..59999: below 1000,
 * and 60000 up (package accounts such as slurm 64030, and nobody/nogroup 65534). Cluster ids
 * are inside that range (checked by the spec), so ids never clash; names can.
 */
import { SlurmkitError } from '../util/errors.js';
import { MAX_ID, MIN_ID } from '../spec/names.js';
import type { ClusterConfig, UnixGroupConfig, UserConfig } from '../spec/types.js';

interface Entry {
  name: string;
  id: number;
  /** The line as the host wrote it. */
  line: string;
  fields: string[];
}

/** Lines of a passwd (7 fields) or group (4 fields) file; anything else (comments, NIS "+" lines) is skipped. */
function entries(text: string, fieldCount: number): Entry[] {
  return text.split('\n').flatMap((line) => {
    const fields = line.split(':');
    const [name = '', , id = ''] = fields;
    if (fields.length !== fieldCount || name === '' || !/^\d+$/.test(id)) return [];
    return [{ name, id: Number(id), line, fields }];
  });
}

function isSystemId(id: number): boolean {
  return id < MIN_ID || id > MAX_ID;
}

function systemEntries(text: string, fieldCount: number): Entry[] {
  return entries(text, fieldCount).filter((e) => isSystemId(e.id));
}

function byId<T>(items: readonly T[], id: (item: T) => number): T[] {
  return [...items].sort((a, b) => id(a) - id(b));
}

/** The host's system accounts, then the cluster users by uid. Throws CONFLICT on a clash (see conflictsWithHost). */
export function renderPasswd(hostPasswd: string, users: readonly UserConfig[]): string {
  const kept = systemEntries(hostPasswd, 7);
  refuseClashes(userClashes(kept, users));
  const lines = [...kept.map((e) => e.line), ...byId(users, (u) => u.uid).map((u) => `${u.name}:x:${u.uid}:${u.gid}::/home/${u.name}:/bin/bash`)];
  return lines.join('\n') + '\n';
}

/**
 * The host's system groups, then the cluster groups by gid. A host person listed as a member
 * of, say, sudo must not hand that membership to a cluster user of the same name, so members
 * of host groups are kept only if `hostPasswd` shows them to be system accounts; without
 * `hostPasswd` the host groups keep no members at all. Throws CONFLICT on a clash.
 */
export function renderGroup(hostGroup: string, groups: readonly UnixGroupConfig[], hostPasswd = ''): string {
  const kept = systemEntries(hostGroup, 4);
  refuseClashes(groupClashes(kept, groups));
  const accounts = new Set(systemEntries(hostPasswd, 7).map((e) => e.name));
  const hostLines = kept.map((e) => {
    const members = (e.fields[3] ?? '').split(',').filter((m) => m !== '');
    const keptMembers = members.filter((m) => accounts.has(m));
    return keptMembers.length === members.length ? e.line : [...e.fields.slice(0, 3), keptMembers.join(',')].join(':');
  });
  const lines = [...hostLines, ...byId(groups, (g) => g.gid).map((g) => `${g.name}:x:${g.gid}:${g.members.join(',')}`)];
  return lines.join('\n') + '\n';
}

/**
 * Cluster users and groups whose name or id is taken by a system entry the nodes keep from the
 * host, one `<where>: <what> — <fix>` line each, like SPEC_INVALID details. Empty when the
 * cluster fits this machine. `up` checks this before creating anything.
 */
export function conflictsWithHost(hostPasswd: string, hostGroup: string, cfg: Pick<ClusterConfig, 'users' | 'unixGroups'>): string[] {
  return [...userClashes(systemEntries(hostPasswd, 7), cfg.users), ...groupClashes(systemEntries(hostGroup, 4), cfg.unixGroups)];
}

function userClashes(kept: Entry[], users: readonly UserConfig[]): string[] {
  return users.flatMap((u, index) =>
    kept.flatMap((e) => {
      if (e.name === u.name) return [`users[${index}].name: "${u.name}" is a system account on this machine (uid ${e.id}) — pick another name, e.g. alice`];
      if (e.id === u.uid) return [`users[${index}].uid: uid ${u.uid} belongs to the system account ${e.name} on this machine — pick another uid from ${MIN_ID} to ${MAX_ID}, or leave uid out`];
      return [];
    }),
  );
}

function groupClashes(kept: Entry[], groups: readonly UnixGroupConfig[]): string[] {
  return groups.flatMap((g) =>
    kept.flatMap((e) => {
      if (e.name === g.name) return [`group ${g.name}: "${g.name}" is a system group on this machine (gid ${e.id}) — ${RENAME_GROUP}`];
      if (e.id === g.gid) return [`group ${g.name}: gid ${g.gid} belongs to the system group ${e.name} on this machine — ${RENAME_GROUP}`];
      return [];
    }),
  );
}

/** A personal group is named after its user; the others come from users[].groups. */
const RENAME_GROUP = "rename it in the spec (a user's own group has the user's name; others come from users[].groups)";

function refuseClashes(problems: string[]): void {
  if (problems.length === 0) return;
  throw new SlurmkitError('CONFLICT', `the cluster's users or groups clash with system accounts of this machine`, {
    details: problems,
    hint: 'rename the users or groups listed',
  });
}
