/**
 * The YAML spec's shape. Every object is strict so a misspelt key is an error, not a silently
 * ignored setting. This checks one field at a time; rules that span fields (unique names,
 * partition members, subnet ranges) live in check.ts so that both kinds are reported together.
 * Messages are not written here: load.ts words every problem from the issue and FIELD_HELP.
 */
import * as z from 'zod';

export { CLUSTER_NAME, MIN_ID, MAX_ID } from './names.js';
import { CLUSTER_NAME, MIN_ID, MAX_ID } from './names.js';
/** Node names are the group name plus an index, so leave room in a 63-character hostname. */
export const GROUP_NAME = /^[a-z][a-z0-9-]{0,39}$/;
export const HOSTNAME = /^[a-z](?:[a-z0-9-]{0,61}[a-z0-9])?$/;
export const PARTITION_NAME = /^[A-Za-z][A-Za-z0-9_-]{0,39}$/;
/** Slurm splits features on commas and parses &, | and brackets in constraints: keep them out. */
export const FEATURE = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,62}$/;
/** Syntax of a slurm.conf key; whether Slurm knows the key is Slurm's business. */
export const CONF_KEY = /^[A-Za-z][A-Za-z0-9]*$/;
const CIDR_SHAPE = /^\d{1,3}(?:\.\d{1,3}){3}\/\d{1,2}$/;
/** Debian's NAME_REGEX (adduser.conf) capped at 32 characters, the utmp limit: safe for every tool. */
export const UNIX_NAME = /^[a-z_][a-z0-9_-]{0,31}$/;

export const MAX_GROUP_COUNT = 1000;
export const MAX_USERS = 500;
export const MAX_USER_GROUPS = 64;
/** 1 PiB: Slurm takes any RealMemory (slurmd is told to believe slurm.conf), so only absurd values are cut. */
export const MAX_MEMORY_MIB = 2 ** 30;
/** 100 years. Slurm reads MaxTime into a 32-bit count of minutes, and beyond that lies UNLIMITED. */
export const MAX_TIME_MINUTES = 100 * 365 * 24 * 60;
/** A slurm.conf value this long is a mistake (a pasted file?), not a setting. */
export const MAX_CONF_VALUE = 1024;
/** Debian's FIRST_UID..LAST_UID: below is the system range, above are package accounts and nobody. */

/** slurm.conf values: YAML numbers and booleans are accepted and written as Slurm spells them. */
const confValue = z.union([z.string(), z.number(), z.boolean()]);
const confMap = z.record(z.string().regex(CONF_KEY), confValue);

/**
 * Where nodes run: namespaces on this machine, containers on a Docker engine (DOCKER_HOST or
 * the default socket), or containers on the engines of several hosts joined into a Docker Swarm.
 */
export const PROVIDER_TYPES = ['local', 'docker', 'swarm'] as const;
export type ProviderType = (typeof PROVIDER_TYPES)[number];
export const MAX_SWARM_HOSTS = 64;
/** DOCKER_HOST-style, as Docker's client takes it: unix:///path, tcp://host:port, ssh://[user@]host[:port]. */
export const ENGINE_ENDPOINT = /^(?:unix:\/\/\/[A-Za-z0-9._/-]+|tcp:\/\/[A-Za-z0-9.-]+:\d{1,5}|ssh:\/\/(?:[a-z_][a-z0-9_-]{0,31}@)?[A-Za-z0-9.-]+(?::\d{1,5})?)$/;

/** Where images are pushed, as Docker names it: host[:port] and an optional path, e.g. 10.0.0.1:5000/hpc. */
export const REGISTRY = /^[A-Za-z0-9.-]+(?::\d{1,5})?(?:\/[a-z0-9._-]+)*$/;

export const swarmHostSchema = z.strictObject({
  name: z.string().regex(HOSTNAME),
  endpoint: z.string().regex(ENGINE_ENDPOINT),
  /** A folder with ca.pem, cert.pem and key.pem (as DOCKER_CERT_PATH): TLS for a tcp:// endpoint. */
  tlsCertPath: z.string().regex(/^\/[^\0]*$/).max(4096).optional(),
  /** At most this many workers on the host; left out, no limit. */
  workers: z.number().int().min(0).max(MAX_GROUP_COUNT).optional(),
});

/** The mapping form; hosts and head belong to swarm only (check.ts says so with the fix). */
export const swarmProviderSchema = z.strictObject({
  type: z.enum(PROVIDER_TYPES),
  hosts: z.array(swarmHostSchema).min(1).max(MAX_SWARM_HOSTS).optional(),
  /** The host the head runs on; left out, the first. */
  head: z.string().regex(HOSTNAME).optional(),
  /**
   * A registry every host's engine reaches (host[:port][/path]): the node image goes through it
   * (pushed once, pulled by each engine) instead of being saved into each engine from the first.
   */
  registry: z.string().regex(REGISTRY).max(255).optional(),
});

export const providerSchema = z.union([z.enum(PROVIDER_TYPES), swarmProviderSchema]);

export const headSchema = z.strictObject({
  hostname: z.string().regex(HOSTNAME).default('head'),
});

/** A node outside Slurm's compute nodes where users work: Slurm's clients, the same users and /home, optionally Jupyter. */
export const loginSchema = z.strictObject({
  hostname: z.string().regex(HOSTNAME).default('login'),
  /** A Jupyter notebook server per cluster user, reachable from this machine on the login node's address. */
  jupyter: z.boolean().default(false),
});

/**
 * Autoscaling on the queue through Slurm's power saving: the group's nodes above minNodes are
 * made when jobs need them and taken away after idleTimeoutSeconds without work.
 */
export const autoscaleSchema = z.strictObject({
  minNodes: z.number().int().min(0).max(MAX_GROUP_COUNT).default(0),
  /** The group's count; may be written here instead (the group's count is then left out). */
  maxNodes: z.number().int().min(1).max(MAX_GROUP_COUNT).optional(),
  idleTimeoutSeconds: z.number().int().min(5).max(7 * 24 * 3600).default(300),
  resumeTimeoutSeconds: z.number().int().min(10).max(3600).default(120),
});

export const groupSchema = z.strictObject({
  name: z.string().regex(GROUP_NAME),
  count: z.number().int().min(1).max(MAX_GROUP_COUNT),
  /**
   * provider swarm: `up` goes on without hosts that do not answer (leaving out the nodes placed
   * there) while the group keeps at least this many; left out, every node of the group is needed.
   */
  minNodes: z.number().int().min(0).max(MAX_GROUP_COUNT).optional(),
  cpus: z.number().int().min(1).max(4096).default(1),
  memoryMiB: z.number().int().min(64).max(MAX_MEMORY_MIB).default(1024),
  features: z.array(z.string().regex(FEATURE)).default([]),
  autoscale: autoscaleSchema.optional(),
});

export const groupRefSchema = z.strictObject({ group: z.string().regex(GROUP_NAME) });

/** A folder a sandboxed job may write to besides the user's home: absolute, plain, not the root. */
export const SANDBOX_PATH = /^\/(?:[A-Za-z0-9._-]+\/?)+$/;

export const sandboxSchema = z.strictObject({
  /** none: no network at all inside a job; cluster: other nodes of the cluster, but no daemon of it and nothing beyond it. */
  network: z.enum(['none', 'cluster']).default('none'),
  /** Memory of each task of a job, in MiB; more ends the task (out of memory), not the node. */
  memoryMiB: z.number().int().min(16).max(MAX_MEMORY_MIB).optional(),
  /** Processes and threads each task may have at once; a fork bomb stops there. */
  pids: z.number().int().min(8).max(1_000_000).optional(),
  /** Folders writable inside the sandbox besides the user's home (the rest of the node is read-only). */
  writable: z.array(z.string().regex(SANDBOX_PATH)).max(16).default([]),
  /** Performance counters (perf_event_open: perf stat, PAPI) inside the sandbox; false refuses them. */
  perf: z.boolean().default(true),
});

export const partitionSchema = z.strictObject({
  name: z.string().regex(PARTITION_NAME),
  /** "all", one hostlist expression, a list of names/expressions, or {group: name}. */
  nodes: z.union([z.string().min(1), z.array(z.string().min(1)).min(1), groupRefSchema]).default('all'),
  /** Left out: the first partition becomes the default when none says `default: true`. */
  default: z.boolean().optional(),
  maxTime: z.union([z.number().int().min(1).max(MAX_TIME_MINUTES), z.literal('UNLIMITED')]).default('UNLIMITED'),
  /** One job per node, whoever submits it (Slurm's OverSubscribe=EXCLUSIVE): clean measurements. */
  exclusive: z.boolean().default(false),
  /** Every job step on the partition's nodes runs in a fresh sandbox (see src/sandbox). */
  sandbox: sandboxSchema.optional(),
  extra: confMap.default({}),
});

export const slurmSchema = z.strictObject({
  slurmdTimeoutSeconds: z.number().int().min(5).max(3600).default(30),
  extraConf: confMap.default({}),
});

export const networkSchema = z.strictObject({
  subnet: z.string().regex(CIDR_SHAPE).optional(),
});

/**
 * Blob storage for `blob`, `batch` and `demo`. The connection string of a real account is a
 * secret: the spec names a file holding it, never the string itself.
 */
export const BLOB_KINDS = ['azurite', 'azure', 'none'] as const;
export const storageSchema = z.strictObject({
  blob: z.enum(BLOB_KINDS).default('azurite'),
  connectionStringFile: z.string().min(1).optional(),
});

/** Same uid and gid on every node; only name is required, the ids are allocated in load.ts. */
export const userSchema = z.strictObject({
  name: z.string().regex(UNIX_NAME),
  uid: z.number().int().min(MIN_ID).max(MAX_ID).optional(),
  gid: z.number().int().min(MIN_ID).max(MAX_ID).optional(),
  groups: z.array(z.string().regex(UNIX_NAME)).max(MAX_USER_GROUPS).default([]),
});

export const specSchema = z.strictObject({
  name: z.string().regex(CLUSTER_NAME),
  provider: providerSchema.default('local'),
  head: headSchema.default({ hostname: 'head' }),
  login: loginSchema.optional(),
  nodes: z.array(groupSchema).min(1),
  partitions: z.array(partitionSchema).min(1).optional(),
  slurm: slurmSchema.default({ slurmdTimeoutSeconds: 30, extraConf: {} }),
  network: networkSchema.default({}),
  accounting: z.boolean().default(false),
  rest: z.boolean().default(false),
  users: z.array(userSchema).max(MAX_USERS).default([]),
  storage: storageSchema.default({ blob: 'azurite' }),
});

export type Spec = z.output<typeof specSchema>;
export type GroupSpec = z.output<typeof groupSchema>;
export type PartitionSpec = z.output<typeof partitionSchema>;
export type UserSpec = z.output<typeof userSchema>;

/**
 * Known keys per place in the spec, for "did you mean" suggestions. Places are paths with
 * list indexes written as [] ("nodes[]").
 */
export const KNOWN_KEYS: Record<string, readonly string[]> = {
  '': Object.keys(specSchema.shape),
  provider: Object.keys(swarmProviderSchema.shape),
  'provider.hosts[]': Object.keys(swarmHostSchema.shape),
  head: Object.keys(headSchema.shape),
  login: Object.keys(loginSchema.shape),
  'nodes[]': Object.keys(groupSchema.shape),
  'nodes[].autoscale': Object.keys(autoscaleSchema.shape),
  'partitions[]': Object.keys(partitionSchema.shape),
  'partitions[].nodes': Object.keys(groupRefSchema.shape),
  'partitions[].sandbox': Object.keys(sandboxSchema.shape),
  slurm: Object.keys(slurmSchema.shape),
  network: Object.keys(networkSchema.shape),
  'users[]': Object.keys(userSchema.shape),
  storage: Object.keys(storageSchema.shape),
};

/** Names people reach for, mapped to ours; used only when the target is a key of that place. */
export const KEY_ALIASES: Record<string, string> = {
  memory: 'memoryMiB',
  mem: 'memoryMiB',
  memorymb: 'memoryMiB',
  memorygb: 'memoryMiB',
  ram: 'memoryMiB',
  realmemory: 'memoryMiB',
  cpu: 'cpus',
  cores: 'cpus',
  ncpus: 'cpus',
  size: 'count',
  replicas: 'count',
  number: 'count',
  node: 'nodes',
  groups: 'nodes',
  workers: 'nodes',
  partition: 'partitions',
  queues: 'partitions',
  timeout: 'slurmdTimeoutSeconds',
  slurmdtimeout: 'slurmdTimeoutSeconds',
  timelimit: 'maxTime',
  conf: 'extraConf',
  cidr: 'subnet',
  feature: 'features',
  host: 'hostname',
  isdefault: 'default',
  slurmdbd: 'accounting',
  dbd: 'accounting',
  sacct: 'accounting',
  accountingstorage: 'accounting',
  slurmrestd: 'rest',
  restapi: 'rest',
  restd: 'rest',
  user: 'users',
  primarygroup: 'gid',
  secondarygroups: 'groups',
  supplementarygroups: 'groups',
  extragroups: 'groups',
  blobstorage: 'storage',
  azurite: 'storage',
  connectionstring: 'connectionStringFile',
  connection: 'connectionStringFile',
  connectionfile: 'connectionStringFile',
};

/**
 * How to fix each field, keyed like KNOWN_KEYS. A problem under a place without its own entry
 * uses the nearest enclosing place's entry.
 */
export const FIELD_HELP: Record<string, string> = {
  '': 'a spec is a YAML mapping with at least name and nodes; `slurmkit init --template minimal` writes a commented example',
  name: 'use 1-31 lowercase letters, digits or "-", starting with a letter, e.g. name: lab',
  provider:
    'use provider: local (namespaces on this machine), provider: docker (containers on the engine DOCKER_HOST names) or provider: {type: swarm, hosts: [...]} (containers on the engines of several hosts)',
  'provider.hosts': `hosts lists 1 to ${MAX_SWARM_HOSTS} Docker engines, e.g. hosts: [{name: h1, endpoint: "unix:///run/docker.sock"}, {name: h2, endpoint: "ssh://root@10.0.0.2"}]`,
  'provider.hosts[]': 'each host is a mapping with name and endpoint, e.g. {name: h2, endpoint: "tcp://10.0.0.2:2376", tlsCertPath: /root/.docker/h2}',
  'provider.hosts[].name': 'use lowercase letters, digits or "-", starting with a letter, e.g. name: h1',
  'provider.hosts[].endpoint': 'endpoint is where the host\'s engine answers, as DOCKER_HOST takes it: unix:///run/docker.sock, tcp://10.0.0.2:2376 or ssh://root@10.0.0.2',
  'provider.hosts[].tlsCertPath': 'tlsCertPath is the absolute path of a folder holding ca.pem, cert.pem and key.pem for a tcp:// endpoint, or leave it out',
  'provider.hosts[].workers': `workers is the most workers this host runs, a whole number from 0 to ${MAX_GROUP_COUNT}, or leave it out for no limit`,
  'provider.registry': 'registry is a Docker registry every host reaches, host[:port][/path] without a scheme, e.g. 10.0.0.1:5000, or leave it out to copy the image from engine to engine',
  'provider.head': 'head is the name of the host (from provider.hosts) that runs the head node, or leave it out for the first host',
  head: 'head is a mapping, e.g. head: {hostname: head}',
  'head.hostname': 'use lowercase letters, digits or "-", starting with a letter, e.g. hostname: head',
  login: 'login is a mapping, e.g. login: {hostname: login, jupyter: true}',
  'login.hostname': 'use lowercase letters, digits or "-", starting with a letter, e.g. hostname: login',
  'login.jupyter': 'jupyter is true (a Jupyter server per cluster user on the login node) or false',
  nodes: 'list at least one node group, e.g. nodes: [{name: c, count: 2}]',
  'nodes[]': 'each node group is a mapping with name and count, e.g. {name: c, count: 2}',
  'nodes[].name': 'use lowercase letters, digits or "-", starting with a letter, e.g. name: c (nodes are then c1, c2, ...)',
  'nodes[].count': `count is a whole number of nodes from 1 to ${MAX_GROUP_COUNT}, e.g. count: 8`,
  'nodes[].cpus': 'cpus is a whole number from 1 to 4096, e.g. cpus: 2',
  'nodes[].memoryMiB': `memoryMiB is a whole number of MiB from 64 to ${MAX_MEMORY_MIB} (1 PiB), e.g. 2048 for 2 GiB`,
  'nodes[].autoscale':
    'autoscale is a mapping, e.g. autoscale: {minNodes: 0, maxNodes: 8, idleTimeoutSeconds: 300}: nodes above minNodes are made when jobs need them',
  'nodes[].autoscale.minNodes': `minNodes is how many of the group's nodes always run, a whole number from 0 to the group's count, e.g. minNodes: 0`,
  'nodes[].autoscale.maxNodes': `maxNodes is the most nodes the group grows to, a whole number from 1 to ${MAX_GROUP_COUNT}; it is the group's count, so write one of them, or both the same`,
  'nodes[].autoscale.idleTimeoutSeconds': 'idleTimeoutSeconds is how long a node may stay idle before it is taken away, 5 to 604800 seconds, e.g. 300',
  'nodes[].autoscale.resumeTimeoutSeconds': 'resumeTimeoutSeconds is how long a node may take from request to idle in Slurm before it counts as failed, 10 to 3600 seconds, e.g. 120',
  'nodes[].features': 'features is a list of words (letters, digits, "_", ".", "-"), e.g. features: [bigmem, ssd]',
  partitions: 'list at least one partition, or leave partitions out for one partition "all" with every node',
  'partitions[]': 'each partition is a mapping with at least a name, e.g. {name: all, nodes: all}',
  'partitions[].name': 'use letters, digits, "_" or "-", starting with a letter, e.g. name: debug',
  'partitions[].nodes':
    'nodes is "all", a hostlist such as c[1-4], a list of names and hostlists such as [c1, "c[5-8]"], or {group: c}',
  'partitions[].default': 'write default: true on the one partition jobs go to when they name none, else leave it out',
  'partitions[].maxTime': `maxTime is a whole number of minutes or UNLIMITED, e.g. maxTime: 60 (at most ${MAX_TIME_MINUTES}, 100 years)`,
  'partitions[].exclusive': 'exclusive is true (each job gets whole nodes, one job per node: OverSubscribe=EXCLUSIVE) or false',
  'partitions[].sandbox': 'sandbox is a mapping, e.g. sandbox: {network: none, memoryMiB: 512, pids: 256}',
  'partitions[].sandbox.network': "network: none (jobs get no network at all) or cluster (the cluster's nodes, so a job's tasks on several nodes talk to each other, but none of its daemons and nothing beyond it)",
  'partitions[].sandbox.memoryMiB': `memoryMiB is a whole number of MiB per task, from 16 to ${MAX_MEMORY_MIB}`,
  'partitions[].sandbox.pids': 'pids is the number of processes a task may have at once, from 8 to 1000000',
  'partitions[].sandbox.writable': 'writable lists absolute folders jobs may write to besides their home, e.g. writable: [/scratch]',
  'partitions[].extra': 'extra holds Key: Value pairs for the PartitionName line, e.g. extra: {OverSubscribe: "NO"}',
  slurm: 'slurm is a mapping, e.g. slurm: {slurmdTimeoutSeconds: 30}',
  'slurm.slurmdTimeoutSeconds': 'slurmdTimeoutSeconds is a whole number of seconds from 5 to 3600, e.g. 30',
  'slurm.extraConf': 'extraConf holds slurm.conf Key: Value pairs, e.g. extraConf: {SlurmctldDebug: debug}',
  network: 'network is a mapping, e.g. network: {subnet: 10.213.7.0/24}, or leave it out',
  accounting:
    'write accounting: true to run slurmdbd with MariaDB on the head (sacct, sreport, fair-share), or accounting: false',
  rest: 'write rest: true to run slurmrestd on the head behind a unix socket, or rest: false',
  users: `users is a list of at most ${MAX_USERS} cluster users, e.g. users: [{name: alice}, {name: bob, groups: [students]}]`,
  'users[]': 'each user is a mapping with at least a name, e.g. {name: alice} or {name: alice, uid: 2001, groups: [students]}',
  'users[].name': 'use 1-32 lowercase letters, digits, "_" or "-", starting with a letter or "_", e.g. name: alice',
  'users[].uid': `uid is a whole number from ${MIN_ID} to ${MAX_ID}, or leave it out to get the next free one from 2001`,
  'users[].gid': `gid is a whole number from ${MIN_ID} to ${MAX_ID}, or leave it out to get a personal group with gid = uid`,
  'users[].groups': `groups is a list of at most ${MAX_USER_GROUPS} group names, e.g. groups: [students]; missing groups are created`,
  storage: 'storage is a mapping, e.g. storage: {blob: azurite}, or leave it out for Azurite in the head node',
  'storage.blob':
    'blob is azurite (an Azurite server in the head node, the default), azure (a real account: also give connectionStringFile) or none',
  'storage.connectionStringFile':
    'connectionStringFile is the absolute path of a file (mode 0600) holding the account\'s connection string, e.g. /root/.config/azure-lab.conn; never put the string itself in a spec',
  'network.subnet':
    'subnet is a private IPv4 network with a /16 to /28 prefix, e.g. 10.213.7.0/24, or leave it out to let slurmkit pick one',
};
