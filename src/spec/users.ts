/**
 * Cluster users and their unix groups: which names are off limits and how missing ids are
 * filled in. Pure, so the same spec always gives the same ids on every `up`.
 */
import type { UserSpec } from './schema.js';
import type { UnixGroupConfig, UserConfig } from './types.js';

export const FIRST_AUTO_UID = 2001;
export const FIRST_AUTO_GID = 3001;

/**
 * Names a cluster user or group may not take. Every node keeps the host's system accounts and
 * groups (see slurm/accounts.ts), and each user also names a personal group, so one list
 * serves both. It holds Debian's base-passwd users and groups, the accounts of the daemons a
 * slurmkit cluster runs (slurm, munge, mysql), and names other distributions and common
 * packages use for privileged groups (wheel, admin, docker, ...). Anything starting with
 * "systemd-" is reserved as well. The host's own system entries are checked once more at
 * `up` time, where the actual /etc/passwd and /etc/group are known.
 */
export const RESERVED_NAMES: readonly string[] = [
  // Debian base-passwd users and groups.
  'root', 'daemon', 'bin', 'sys', 'sync', 'games', 'man', 'lp', 'mail', 'news', 'uucp', 'proxy',
  'www-data', 'backup', 'list', 'irc', 'gnats', 'nobody', 'nogroup', 'adm', 'tty', 'disk', 'kmem',
  'dialout', 'fax', 'voice', 'cdrom', 'floppy', 'tape', 'sudo', 'audio', 'dip', 'operator', 'src',
  'shadow', 'utmp', 'video', 'sasl', 'plugdev', 'staff', 'users', 'input', 'sgx', 'kvm', 'render',
  'netdev', 'crontab',
  // Daemons of a slurmkit cluster.
  'slurm', 'slurmrestd', 'munge', 'mysql', 'mariadb',
  // Common service accounts and privileged groups on Debian, Ubuntu and RHEL-like systems.
  '_apt', '_ssh', 'messagebus', 'sshd', 'polkitd', 'syslog', 'uuidd', 'tcpdump', 'tss', 'ssl-cert',
  'avahi', 'dnsmasq', 'postfix', 'postdrop', 'ntp', 'chrony', 'rdma', 'lxd', 'docker', 'libvirt',
  'wheel', 'admin', 'ftp', 'halt', 'shutdown', 'nfsnobody', 'postgres', 'landscape', 'pollinate',
];

const RESERVED = new Set(RESERVED_NAMES);

export function isReservedName(name: string): boolean {
  return RESERVED.has(name) || name.startsWith('systemd-');
}

export interface ResolvedUsers {
  users: UserConfig[];
  unixGroups: UnixGroupConfig[];
}

/**
 * Fills in ids and builds the group list. Expects a spec that passed checkSpec (unique names
 * and uids, no group named after a user with another primary group).
 *
 * - A user without uid gets the lowest free one from 2001, skipping every uid and gid the spec
 *   names, so an allocated user never lands in someone else's group by accident.
 * - A user without gid gets a personal group named after them with gid = uid. A group for a gid
 *   the spec names is named after the user whose own uid it is (if that user's gid is the same),
 *   else after the first user with that gid: alice {uid: 2001} and bob {gid: 2001} share "alice".
 * - Supplementary groups named like an existing personal group join it; others are created
 *   with gids from 3001 in order of first mention, skipping every id already in use.
 */
export function resolveUsers(specs: readonly UserSpec[]): ResolvedUsers {
  const reserved = new Set(specs.flatMap((u) => [u.uid, u.gid]).filter((id): id is number => id !== undefined));
  let nextUid = FIRST_AUTO_UID;
  const ids = specs.map((u) => {
    let uid = u.uid;
    if (uid === undefined) {
      while (reserved.has(nextUid)) nextUid++;
      uid = nextUid++;
    }
    return { uid, gid: u.gid ?? uid };
  });

  const groups = new Map<string, { gid: number; members: Set<string> }>();
  const nameOfGid = new Map<number, string>();
  specs.forEach((u, i) => {
    const { uid, gid } = ids[i]!;
    if (uid === gid) nameOfGid.set(gid, u.name);
  });
  specs.forEach((u, i) => {
    const { gid } = ids[i]!;
    if (!nameOfGid.has(gid)) nameOfGid.set(gid, u.name);
  });
  for (const [gid, name] of nameOfGid) groups.set(name, { gid, members: new Set() });

  const used = new Set([...ids.flatMap((x) => [x.uid, x.gid])]);
  let nextGid = FIRST_AUTO_GID;
  const users = specs.map((u, i): UserConfig => {
    const { uid, gid } = ids[i]!;
    const primary = nameOfGid.get(gid)!;
    // Allocated in the order written; listed sorted.
    const extra = [...new Set(u.groups)].filter((g) => g !== primary);
    for (const name of extra) {
      let group = groups.get(name);
      if (!group) {
        while (used.has(nextGid)) nextGid++;
        used.add(nextGid);
        group = { gid: nextGid, members: new Set() };
        groups.set(name, group);
      }
      group.members.add(u.name);
    }
    return { name: u.name, uid, gid, groups: extra.sort(byCodeUnit) };
  });

  const unixGroups = [...groups].map(([name, g]) => ({ name, gid: g.gid, members: [...g.members].sort(byCodeUnit) })).sort((a, b) => a.gid - b.gid);
  return { users, unixGroups };
}

/** Plain code-unit order, so the locale cannot change the output. */
export function byCodeUnit(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
