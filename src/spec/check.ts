/**
 * Rules that span fields: unique names, partition members, one default partition, subnet.
 * They run on the raw spec next to the schema and read each field on its own, so a typo in
 * one field never hides a clash elsewhere: one run reports every problem.
 */
import type * as z from 'zod';
import { compressHostlist, expandHostlist, HostlistError } from '../slurm/hostlist.js';
import { describe, problem, type Path } from './issues.js';
import { autoscaleSchema, CONF_KEY, MAX_CONF_VALUE, swarmHostSchema, swarmProviderSchema, groupSchema, headSchema, loginSchema, networkSchema, partitionSchema, sandboxSchema, storageSchema, userSchema, type GroupSpec, type PartitionSpec, type UserSpec } from './schema.js';
import { isReservedName, resolveUsers } from './users.js';

/** Mirrors planNetwork in cluster/subnet.ts: .0 network, .1 gateway, .2 head, workers from .11, broadcast last. */
const RESERVED_ADDRESSES = 12;

/** Keys slurmkit writes from a spec field; setting them in extraConf would fight the spec. */
const OWNED_CONF_KEYS: Record<string, string> = {
  clustername: 'set it with name',
  slurmctldhost: 'set it with head.hostname',
  slurmdtimeout: 'set it with slurm.slurmdTimeoutSeconds',
  nodename: 'nodes come from the node groups under nodes',
  nodeset: 'use partitions with {group: NAME} instead',
  downnodes: 'nodes come from the node groups under nodes',
  frontendname: 'slurmkit does not use front-end nodes',
  partitionname: 'partitions come from partitions',
  include: 'put the settings themselves in extraConf',
  accountingstoragetype: 'set accounting: true to run slurmdbd on the head',
  accountingstoragehost: 'slurmdbd runs on the head: set accounting: true',
};

const OWNED_PARTITION_KEYS: Record<string, string> = {
  partitionname: 'set it with name',
  nodes: 'set it with nodes',
  default: 'set it with default',
  maxtime: 'set it with maxTime',
};

interface Valid<T> {
  index: number;
  value: T;
}

/** All that node naming needs from a group. */
type GroupNaming = Pick<GroupSpec, 'name' | 'count'>;

export function nodeNames(group: GroupNaming): string[] {
  return Array.from({ length: group.count }, (_, i) => `${group.name}${i + 1}`);
}

/**
 * The node names a partition's `nodes` field asks for, in the order written, without checking
 * they exist. Throws HostlistError on a malformed expression.
 */
export function requestedNodes(nodes: PartitionSpec['nodes'], groups: readonly GroupNaming[]): string[] {
  if (nodes === 'all') return groups.flatMap(nodeNames);
  if (typeof nodes === 'object' && !Array.isArray(nodes)) return groups.filter((g) => g.name === nodes.group).flatMap(nodeNames);
  return (Array.isArray(nodes) ? nodes : [nodes]).flatMap((expr) => expandHostlist(expr));
}

export function checkSpec(raw: unknown): string[] {
  if (!isRecord(raw)) return [];
  const rawGroups = Array.isArray(raw.nodes) ? raw.nodes : [];
  const groups = rawGroups.flatMap((item, index) => {
    const name = field(item, 'name', groupSchema.shape.name);
    const count = field(item, 'count', groupSchema.shape.count);
    return name !== undefined && count !== undefined ? [{ index, value: { name, count } }] : [];
  });
  // Membership is only worth checking against the complete list of nodes.
  const allGroupsKnown = groups.length > 0 && groups.length === rawGroups.length;
  const groupNames = rawGroups.map((item) => field(item, 'name', groupSchema.shape.name));
  const problems = [...duplicateNames(groupNames, 'nodes', 'group', 'give each group its own name, or raise count on one of them'), ...clashingNodes(groups)];

  const hostname = field(raw.head ?? {}, 'hostname', headSchema.shape.hostname);
  const headOwner = hostname === undefined ? undefined : nodeOwners(groups).get(hostname);
  if (headOwner) {
    problems.push(problem(['head', 'hostname'], `"${hostname}" is also a worker node of group "${headOwner.value.name}" (nodes[${headOwner.index}])`, 'choose another hostname for the head, e.g. hostname: head'));
  }

  if (raw.login !== undefined) {
    const login = field(raw.login, 'hostname', loginSchema.shape.hostname);
    const loginOwner = login === undefined ? undefined : nodeOwners(groups).get(login);
    if (loginOwner) {
      problems.push(problem(['login', 'hostname'], `"${login}" is also a worker node of group "${loginOwner.value.name}" (nodes[${loginOwner.index}])`, 'choose another hostname for the login node, e.g. hostname: login'));
    } else if (login !== undefined && login === (hostname ?? 'head')) {
      problems.push(problem(['login', 'hostname'], `"${login}" is the head's hostname too`, 'choose another hostname for the login node, e.g. hostname: login'));
    }
    const users = Array.isArray(raw.users) ? raw.users : [];
    if (field(raw.login, 'jupyter', loginSchema.shape.jupyter) === true && users.length === 0) {
      problems.push(problem(['users'], 'login.jupyter is true, and Jupyter serves the cluster\'s users: list at least one', 'add users, e.g. users: [{name: alice}], or set login.jupyter: false'));
    }
  }

  const rawPartitions = Array.isArray(raw.partitions) ? raw.partitions : [];
  // When a count is invalid the node list is incomplete, but a name no group could make is still wrong.
  const possibleGroups = groupNames.every((n) => n !== undefined) ? (groupNames as string[]) : undefined;
  problems.push(...partitionProblems(rawPartitions, groups.map((g) => g.value), allGroupsKnown, possibleGroups));
  problems.push(...confProblems(['slurm', 'extraConf'], isRecord(raw.slurm) ? raw.slurm.extraConf : undefined, OWNED_CONF_KEYS));

  problems.push(...userProblems(Array.isArray(raw.users) ? raw.users : []));

  problems.push(...sandboxProblems(rawPartitions, groups.map((g) => g.value), allGroupsKnown));
  const extraConf = isRecord(raw.slurm) && isRecord(raw.slurm.extraConf) ? raw.slurm.extraConf : {};
  const epilog = Object.keys(extraConf).find((k) => k.toLowerCase() === 'epilog');
  if (epilog && rawPartitions.some((p) => isRecord(p) && p.sandbox !== undefined)) {
    problems.push(problem(['slurm', 'extraConf', epilog], 'a cluster with sandboxed partitions runs slurmkit\'s Epilog (it drains a node it cannot clean)', `remove ${epilog}, or the sandbox`));
  }
  const srunPorts = Object.keys(extraConf).find((k) => k.toLowerCase() === 'srunportrange');
  if (srunPorts && rawPartitions.some((p) => isRecord(p) && isRecord(p.sandbox) && p.sandbox.network === 'cluster')) {
    problems.push(problem(['slurm', 'extraConf', srunPorts], 'jobs sandboxed with network: cluster reach srun on the ports slurmkit sets', `remove ${srunPorts}, or use network: none`));
  }
  problems.push(...minNodesProblems(rawGroups, raw.provider));
  problems.push(...autoscaleProblems(rawGroups));
  problems.push(...storageProblems(raw.storage));
  problems.push(...providerProblems(raw.provider, allGroupsKnown ? groups.reduce((n, g) => n + g.value.count, 0) : undefined));

  const subnet = field(raw.network, 'subnet', networkSchema.shape.subnet);
  if (subnet !== undefined) {
    problems.push(...subnetProblems(subnet, allGroupsKnown ? groups.reduce((n, g) => n + g.value.count, 0) : 0));
  }
  return problems;
}

/**
 * Sandboxes: a node's jobs are sandboxed or not whichever partition they came from, so a node of
 * a sandboxed partition may be in other partitions only with the same sandbox.
 */
function sandboxProblems(partitions: unknown[], groups: GroupNaming[], allGroupsKnown: boolean): string[] {
  const problems: string[] = [];
  const sandboxes = partitions.map((item) => (isRecord(item) && item.sandbox !== undefined ? JSON.stringify(sandboxSchema.safeParse(item.sandbox).data ?? item.sandbox) : undefined));
  if (!allGroupsKnown || sandboxes.every((s) => s === undefined)) return problems;
  const owner = new Map<string, number>();
  partitions.forEach((item, index) => {
    const nodes = field(item, 'nodes', partitionSchema.shape.nodes);
    if (nodes === undefined) return;
    let members: string[];
    try {
      members = requestedNodes(nodes, groups);
    } catch {
      return; // reported with the partition's nodes
    }
    for (const node of members) {
      const first = owner.get(node);
      if (first === undefined) {
        owner.set(node, index);
      } else if (sandboxes[first] !== sandboxes[index]) {
        const sandboxed = sandboxes[index] !== undefined ? index : first;
        const other = sandboxed === index ? first : index;
        const otherName = field(partitions[other], 'name', partitionSchema.shape.name) ?? `partitions[${other}]`;
        problems.push(
          problem(
            ['partitions', sandboxed, 'sandbox'],
            `node ${node} is also in partition ${otherName}, ${sandboxes[other] === undefined ? 'which is not sandboxed' : 'which has another sandbox'}: a node's jobs are sandboxed alike whatever partition they came from`,
            'give the sandboxed partition nodes of its own, or the same sandbox to both partitions',
          ),
        );
        return;
      }
    }
  });
  return problems;
}

/** minNodes: at most the group's count, and only where hosts may be missing (a swarm). */
function minNodesProblems(rawGroups: unknown[], provider: unknown): string[] {
  const swarm = provider === 'swarm' || (isRecord(provider) && provider.type === 'swarm');
  return rawGroups.flatMap((item, i) => {
    const min = field(item, 'minNodes', groupSchema.shape.minNodes);
    if (min === undefined) return [];
    if (!swarm) return [problem(['nodes', i, 'minNodes'], 'only provider swarm goes on without some nodes (those of hosts that do not answer at up)', 'remove minNodes, or use provider type swarm')];
    const count = field(item, 'count', groupSchema.shape.count);
    return count !== undefined && min > count ? [problem(['nodes', i, 'minNodes'], `${min} is more than the group's count (${count})`, `write at most minNodes: ${count}`)] : [];
  });
}

/** autoscale: minNodes within the group, and maxNodes the group's count. */
function autoscaleProblems(rawGroups: unknown[]): string[] {
  return rawGroups.flatMap((item, i) => {
    if (!isRecord(item) || !isRecord(item.autoscale)) return [];
    const out: string[] = [];
    const count = field(item, 'count', groupSchema.shape.count);
    const max = field(item.autoscale, 'maxNodes', autoscaleSchema.shape.maxNodes);
    const min = field(item.autoscale, 'minNodes', autoscaleSchema.shape.minNodes);
    if (item.count !== undefined && max !== undefined && count !== undefined && max !== count) {
      out.push(problem(['nodes', i, 'autoscale', 'maxNodes'], `${max} differs from the group's count (${count}); both say how large the group may grow`, `write one of them, e.g. remove count and keep maxNodes: ${max}`));
    }
    const size = max ?? count;
    if (min !== undefined && size !== undefined && min > size) {
      out.push(problem(['nodes', i, 'autoscale', 'minNodes'], `${min} is more than the group's ${max !== undefined ? 'maxNodes' : 'count'} (${size})`, `write at most minNodes: ${size}`));
    }
    return out;
  });
}

/**
 * A swarm needs its hosts, each named once and reached at its own endpoint; the head on one of
 * them; room for every worker where hosts cap theirs.
 */
function providerProblems(provider: unknown, workers: number | undefined): string[] {
  const example = '{type: swarm, hosts: [{name: h1, endpoint: "unix:///run/docker.sock"}, {name: h2, endpoint: "ssh://root@10.0.0.2"}]}';
  if (provider === 'swarm' || (isRecord(provider) && provider.type === 'swarm' && !('hosts' in provider))) {
    return [problem(['provider'], 'the swarm provider needs the Docker engines of its hosts', `write provider: ${example}`)];
  }
  if (isRecord(provider) && typeof provider.type === 'string' && provider.type !== 'swarm') {
    const extra = ['hosts', 'head', 'registry'].filter((k) => k in provider);
    if (extra.length > 0) return extra.map((k) => problem(['provider', k], `${k} is only for provider type swarm, not ${provider.type}`, `remove ${k}, or write type: swarm`));
  }
  if (!isRecord(provider) || provider.type !== 'swarm' || !Array.isArray(provider.hosts)) return [];
  const hosts = provider.hosts as unknown[];
  const problems: string[] = [];
  const seen = new Map<string, number>();
  const names: (string | undefined)[] = [];
  for (const key of ['name', 'endpoint'] as const) {
    seen.clear();
    hosts.forEach((h, index) => {
      const value = field(h, key, swarmHostSchema.shape[key]);
      if (key === 'name') names.push(value);
      if (value === undefined) return;
      const first = seen.get(value);
      if (first === undefined) seen.set(value, index);
      else problems.push(problem(['provider', 'hosts', index, key], `${key} "${value}" is already given at provider.hosts[${first}]`, key === 'name' ? 'give each host its own name' : 'list each engine once'));
    });
  }
  const head = field(provider, 'head', swarmProviderSchema.shape.head.unwrap());
  if (head !== undefined && names.every((n) => n !== undefined) && !names.includes(head)) {
    problems.push(problem(['provider', 'head'], `"${head}" is not a host of provider.hosts`, `use one of ${names.join(', ')}, or leave head out for the first host`));
  }
  const caps = hosts.map((h) => (isRecord(h) && 'workers' in h ? field(h, 'workers', swarmHostSchema.shape.workers.unwrap()) : Infinity));
  if (workers !== undefined && caps.every((c) => c !== undefined)) {
    const room = (caps as number[]).reduce((a, b) => a + b, 0);
    if (room < workers) {
      problems.push(problem(['provider', 'hosts'], `the hosts take at most ${room} workers (their workers: limits) but the spec has ${workers}`, 'raise workers: on a host, leave it out on one for no limit, or add a host'));
    }
  }
  return problems;
}

/** A real account needs the file with its connection string, and only a real account takes one. */
function storageProblems(storage: unknown): string[] {
  const blob = field(storage, 'blob', storageSchema.shape.blob);
  const file = field(storage, 'connectionStringFile', storageSchema.shape.connectionStringFile);
  const problems: string[] = [];
  if (blob === 'azure' && file === undefined && !(isRecord(storage) && 'connectionStringFile' in storage)) {
    problems.push(problem(['storage', 'connectionStringFile'], 'blob: azure needs the file that holds the account\'s connection string', 'add connectionStringFile: /path/to/file (mode 0600), e.g. /root/.config/azure-lab.conn'));
  }
  if (file !== undefined && blob !== undefined && blob !== 'azure') {
    problems.push(problem(['storage', 'connectionStringFile'], `a connection string file is only used with blob: azure, not blob: ${blob}`, 'write blob: azure to use that account, or remove connectionStringFile'));
  }
  if (file !== undefined && !file.startsWith('/')) {
    problems.push(problem(['storage', 'connectionStringFile'], `${JSON.stringify(file)} is not an absolute path`, `write the whole path, e.g. /root/${file.replace(/^\.?\/+/, '')}`));
  }
  // Legal in a Linux path, but never meant, and printed in messages and hints.
  if (file !== undefined && /[\p{C}\u2028\u2029]/u.test(file)) {
    problems.push(problem(['storage', 'connectionStringFile'], `${JSON.stringify(file)} has a control or invisible character`, 'write the path of the file as plain text on one line'));
  }
  return problems;
}

/**
 * Users: unique names and uids, no system names, and no supplementary group that would take a
 * user's name for a different group than that user's own.
 */
function userProblems(users: unknown[]): string[] {
  const names = users.map((item) => field(item, 'name', userSchema.shape.name));
  const problems = duplicateNames(names, 'users', 'user', 'give each user their own name');
  names.forEach((name, index) => {
    if (name !== undefined && isReservedName(name)) {
      problems.push(problem(['users', index, 'name'], `"${name}" is a system account name`, 'pick another name, e.g. alice'));
    }
  });

  const uidOwner = new Map<number, number>();
  let uidsUnique = true;
  users.forEach((item, index) => {
    const uid = field(item, 'uid', userSchema.shape.uid);
    if (uid === undefined) return;
    const first = uidOwner.get(uid);
    if (first === undefined) uidOwner.set(uid, index);
    else {
      uidsUnique = false;
      problems.push(problem(['users', index, 'uid'], `uid ${uid} is already used by ${names[first] ? `"${names[first]}" ` : ''}(users[${first}])`, 'give each user their own uid, or leave uid out to get a free one'));
    }
  });

  users.forEach((item, index) => {
    const groups = isRecord(item) && Array.isArray(item.groups) ? item.groups : [];
    groups.forEach((group, j) => {
      const name = userSchema.shape.name.safeParse(group);
      if (name.success && isReservedName(name.data)) {
        problems.push(problem(['users', index, 'groups', j], `"${name.data}" is a system group`, 'pick another name, e.g. students'));
      }
    });
  });

  // Which group a user's name stands for depends on every user's ids: only decide when all are known.
  const parsed = users.map((item) => userSchema.safeParse(item));
  if (uidsUnique && parsed.every((p) => p.success) && new Set(names).size === names.length) {
    problems.push(...groupNameClashes(parsed.map((p) => p.data as UserSpec)));
  }
  return problems;
}

function groupNameClashes(users: UserSpec[]): string[] {
  const { users: resolved, unixGroups } = resolveUsers(users);
  const groupOfGid = new Map(unixGroups.map((g) => [g.gid, g.name]));
  const userByName = new Map(resolved.map((u) => [u.name, u]));
  return users.flatMap((u, index) =>
    u.groups.flatMap((name, j) => {
      const owner = userByName.get(name);
      if (!owner || groupOfGid.get(owner.gid) === name) return [];
      return [
        problem(
          ['users', index, 'groups', j],
          `group "${name}" has the name of user ${name}, whose primary group is "${groupOfGid.get(owner.gid)}" (gid ${owner.gid})`,
          `rename the group, or write groups: [${groupOfGid.get(owner.gid)}] to join ${name}'s primary group`,
        ),
      ];
    }),
  );
}

/** A field that is valid on its own, whatever is wrong elsewhere in its mapping. */
function field<T>(obj: unknown, key: string, schema: z.ZodType<T>): T | undefined {
  if (!isRecord(obj)) return undefined;
  const parsed = schema.safeParse(obj[key]);
  return parsed.success ? parsed.data : undefined;
}

/** Reports each name that an earlier entry of the same list already has. */
function duplicateNames(names: (string | undefined)[], list: string, kind: string, fix: string): string[] {
  const firstAt = new Map<string, number>();
  return names.flatMap((name, index) => {
    if (name === undefined) return [];
    const first = firstAt.get(name);
    if (first === undefined) {
      firstAt.set(name, index);
      return [];
    }
    return [problem([list, index, 'name'], `${kind} "${name}" is already defined at ${list}[${first}]`, fix)];
  });
}

/** Names are group + index, so "c" with 11 nodes and "c1" both make c11; Slurm refuses duplicate NodeNames. */
function clashingNodes(groups: Valid<GroupNaming>[]): string[] {
  const made = new Map<string, Valid<GroupNaming>>();
  const clashes = new Map<string, { first: Valid<GroupNaming>; second: Valid<GroupNaming>; names: string[] }>();
  for (const g of groups) {
    for (const name of nodeNames(g.value)) {
      const first = made.get(name);
      if (!first) made.set(name, g);
      // Same-named groups are reported once as duplicates, not once per node.
      else if (first.value.name !== g.value.name) {
        const key = `${first.index}/${g.index}`;
        const clash = clashes.get(key) ?? { first, second: g, names: [] };
        clash.names.push(name);
        clashes.set(key, clash);
      }
    }
  }
  return [...clashes.values()].map(({ first, second, names }) =>
    problem(
      ['nodes', second.index, 'name'],
      `groups "${first.value.name}" (nodes[${first.index}]) and "${second.value.name}" both make node${names.length > 1 ? 's' : ''} ${compressHostlist(names)}`,
      'rename one of the groups; nodes are named group + number, so a group name ending in a digit is the usual cause',
    ),
  );
}

function nodeOwners(groups: Valid<GroupNaming>[]): Map<string, Valid<GroupNaming>> {
  const owners = new Map<string, Valid<GroupNaming>>();
  for (const g of groups) for (const name of nodeNames(g.value)) if (!owners.has(name)) owners.set(name, g);
  return owners;
}

function partitionProblems(partitions: unknown[], groups: GroupNaming[], checkMembers: boolean, possibleGroups?: string[]): string[] {
  const names = partitions.map((item) => field(item, 'name', partitionSchema.shape.name));
  const problems = duplicateNames(names, 'partitions', 'partition', 'give each partition its own name');
  const defaults: { index: number; name: string }[] = [];
  partitions.forEach((item, index) => {
    const name = names[index];
    if (name?.toLowerCase() === 'default') {
      problems.push(problem(['partitions', index, 'name'], '"default" is reserved by Slurm (PartitionName=DEFAULT sets defaults for all partitions)', 'choose another name, e.g. name: main'));
    }
    if (field(item, 'default', partitionSchema.shape.default) === true) defaults.push({ index, name: name ?? `partitions[${index}]` });
    const nodes = field(item, 'nodes', partitionSchema.shape.nodes);
    if (nodes !== undefined) problems.push(...memberProblems(['partitions', index, 'nodes'], nodes, groups, checkMembers, possibleGroups));
    problems.push(...confProblems(['partitions', index, 'extra'], isRecord(item) ? item.extra : undefined, OWNED_PARTITION_KEYS));
    const extra = isRecord(item) && isRecord(item.extra) ? item.extra : {};
    const over = Object.keys(extra).find((k) => k.toLowerCase() === 'oversubscribe');
    if (over && field(item, 'exclusive', partitionSchema.shape.exclusive) === true) {
      problems.push(problem(['partitions', index, 'extra', over], `${over} conflicts with exclusive: true (which writes OverSubscribe=EXCLUSIVE)`, `keep exclusive: true and remove extra.${over}, or the other way round`));
    }
  });
  const second = defaults[1];
  if (second) {
    const quoted = defaults.map((p) => `"${p.name}"`);
    const what = quoted.length === 2 ? `partitions ${quoted.join(' and ')} are both` : `partitions ${quoted.join(', ')} are all`;
    problems.push(problem(['partitions', second.index, 'default'], `${what} marked default: true`, 'keep default: true on one partition only'));
  }
  return problems;
}

function memberProblems(path: Path, nodes: PartitionSpec['nodes'], groups: GroupNaming[], checkMembers: boolean, possibleGroups?: string[]): string[] {
  if (nodes === 'all') return [];
  if (typeof nodes === 'object' && !Array.isArray(nodes)) {
    if (!checkMembers || groups.some((g) => g.name === nodes.group)) return [];
    return [problem([...path, 'group'], `there is no node group "${nodes.group}"`, `use one of the groups: ${groups.map((g) => g.name).join(', ')}`)];
  }
  const existing = new Set(groups.flatMap(nodeNames));
  const entries = Array.isArray(nodes) ? nodes.map((expr, i) => [[...path, i], expr] as const) : [[path, nodes] as const];
  return entries.flatMap(([at, expr]) => {
    let names: string[];
    try {
      names = expandHostlist(expr);
    } catch (err) {
      if (!(err instanceof HostlistError)) throw err;
      return [problem(at, err.message, 'write node names or hostlists such as c1, c[1-4] or c[1,3,5]')];
    }
    const couldExist = (n: string): boolean => (possibleGroups ?? []).some((g) => n.startsWith(g) && /^\d+$/.test(n.slice(g.length)));
    const missing = checkMembers ? names.filter((n) => !existing.has(n)) : possibleGroups ? names.filter((n) => !couldExist(n)) : [];
    if (missing.length === 0) return [];
    const what = missing.length === 1 ? `node ${missing[0]} does not exist` : `nodes ${compressHostlist(missing)} do not exist`;
    return [problem(at, what, `name only nodes of this cluster: ${compressHostlist([...existing])}`)];
  });
}

/**
 * Characters Slurm's config parser (s_p_parse_file) reads as syntax: whitespace separates pairs,
 * "#" starts a comment, "\\" escapes the next character and continues a line that ends with it,
 * '"' quotes a value. Quotes of either kind and invisible characters (control, format) have no
 * use in a value slurmkit can write unquoted, so none of them may reach a line.
 */
const CONF_VALUE_SYNTAX = /[\s#"'\\\p{C}]/u;
/** How String() writes a number Slurm can read back: digits, optionally a sign and a fraction. */
const PLAIN_NUMBER = /^-?\d+(?:\.\d+)?$/;

/**
 * slurm.conf lines are whitespace-separated Key=Value pairs and "#" starts a comment. Reads the
 * raw mapping so one bad key does not hide problems with the others (the schema reports keys
 * and value types).
 */
function confProblems(path: Path, conf: unknown, owned: Record<string, string>): string[] {
  if (!isRecord(conf)) return [];
  const problems: string[] = [];
  const seen = new Map<string, string>();
  for (const [key, value] of Object.entries(conf)) {
    if (!CONF_KEY.test(key)) {
      // zod's record skips "__proto__" without a word, so the schema never reports it.
      if (key === '__proto__') problems.push(problem([...path, key], `${JSON.stringify(key)} is not a valid key`, 'keys are a letter followed by letters and digits, as in slurm.conf'));
      continue;
    }
    const lower = key.toLowerCase();
    // Own keys only: "constructor" is a fine slurm.conf key, not Object.prototype's.
    const ownedFix = Object.hasOwn(owned, lower) ? owned[lower] : undefined;
    if (ownedFix) problems.push(problem([...path, key], `${key} is written by slurmkit`, ownedFix));
    const twin = seen.get(lower);
    if (twin) problems.push(problem([...path, key], `${key} repeats ${twin} (slurm.conf keys ignore case)`, 'keep one of them'));
    seen.set(lower, key);
    if (typeof value === 'string' && (value === '' || CONF_VALUE_SYNTAX.test(value))) {
      problems.push(
        problem(
          [...path, key],
          `${describe(value)} cannot be written into slurm.conf`,
          'use a value without spaces, "#", quotes, "\\" or control characters (Slurm lists are comma-separated), or leave the key out',
        ),
      );
    } else if (typeof value === 'string' && value.length > MAX_CONF_VALUE) {
      problems.push(problem([...path, key], `is longer than ${MAX_CONF_VALUE} characters`, 'shorten the value, or leave the key out'));
    } else if (typeof value === 'number' && !PLAIN_NUMBER.test(String(value))) {
      problems.push(problem([...path, key], `${value} would be written as ${String(value)}, which Slurm does not read as a number`, 'write the number in plain digits, e.g. 5000'));
    }
  }
  return problems;
}

/** RFC 1918: the cluster bridge must never shadow a route to the outside world. */
const PRIVATE_RANGES = [
  { start: toInt([10, 0, 0, 0]), prefix: 8 },
  { start: toInt([172, 16, 0, 0]), prefix: 12 },
  { start: toInt([192, 168, 0, 0]), prefix: 16 },
];

function subnetProblems(subnet: string, workers: number): string[] {
  const path = ['network', 'subnet'];
  const [ip = '', len = ''] = subnet.split('/');
  const octets = ip.split('.').map(Number);
  if (octets.some((o) => o > 255)) return [problem(path, `"${subnet}" is not an IPv4 network`, 'each of the four numbers is 0 to 255, e.g. 10.213.7.0/24')];
  const prefix = Number(len);
  if (prefix < 16 || prefix > 28) return [problem(path, `a /${prefix} network is not supported`, 'use a prefix from /16 to /28, e.g. 10.213.7.0/24')];
  const address = toInt(octets);
  const size = 2 ** (32 - prefix);
  const network = address - (address % size);
  if (network !== address) return [problem(path, `"${subnet}" has host bits set`, `did you mean ${fromInt(network)}/${prefix}?`)];
  const isPrivate = PRIVATE_RANGES.some((r) => network >= r.start && network < r.start + 2 ** (32 - r.prefix));
  if (!isPrivate) return [problem(path, `${subnet} is not a private network`, 'use an address in 10.0.0.0/8, 172.16.0.0/12 or 192.168.0.0/16, e.g. 10.213.7.0/24')];
  if (workers > size - RESERVED_ADDRESSES) {
    let fit = prefix;
    while (fit > 16 && 2 ** (32 - fit) - RESERVED_ADDRESSES < workers) fit--;
    return [problem(path, `a /${prefix} network holds at most ${size - RESERVED_ADDRESSES} workers, the spec has ${workers}`, `use a larger network, e.g. ${fromInt(network - (network % 2 ** (32 - fit)))}/${fit}`)];
  }
  return [];
}

function toInt(octets: number[]): number {
  return octets.reduce((n, o) => n * 256 + o, 0);
}

function fromInt(n: number): string {
  return [24, 16, 8, 0].map((shift) => Math.floor(n / 2 ** shift) % 256).join('.');
}

export function isRecord(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}
