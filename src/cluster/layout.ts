import type { Mount, NodeFile, NodeSpec } from '../providers/types.js';
import { HEAD_SECRETS, NODE_WORK, type ClusterPaths } from './paths.js';
import { JWT_KEY_PATH } from '../slurm/render.js';
import { MAX_ID, MIN_ID } from '../spec/names.js';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readFile, readdir } from 'node:fs/promises';
import type { NodeRecord } from './state.js';
import type { HeadNeeds } from './services.js';
import { SANDBOX_NET, sandboxFiles, sandboxedNodeNames } from '../sandbox/sandbox.js';
import { accountingSteps, restStep, sitePaths, NO_SITE, type SiteFeatures } from './site.js';

/**
 * How slurmkit configures a machine into a Slurm node: which of the cluster's folders it
 * sees where, and which daemons it runs. The provider only carries this out.
 */

export interface Daemon {
  /** Process name, as `list` reports it. */
  name: string;
  /** Shell commands that start it inside the node (from boot, or again from `start`). */
  start: string;
  /** Programs `start` runs, each of which the machine must have (doctor checks them). */
  programs: string[];
  /**
   * Shell commands that stop the running daemon gracefully and start it again, for daemons
   * `start` restarts although they still run (slurmd, after slurmctld died: see `start`).
   */
  restart?: string;
  /** A boot step, not a process (nothing to find running): `start` leaves it to the node's boot. */
  step?: boolean;
  /** A step that `start` runs again on a running node: it starts only what is not running. */
  rerun?: boolean;
}

/** Slurm's clients, which slurmkit runs in the head (sinfo to wait for nodes, sbatch for batches, ...). */
const CLIENT_PROGRAMS = ['sinfo', 'srun', 'sbatch', 'squeue', 'scancel', 'scontrol', 'sacct'];

/** A head and a worker of a cluster with these site features, to derive what every node needs. */
export function sampleNodes(): NodeRecord[] {
  return [
    { name: 'head', role: 'head', index: 0, address: '0.0.0.0' },
    { name: 'c1', role: 'worker', index: 1, address: '0.0.0.0' },
  ];
}

/** Every program a cluster with these site features runs: its daemons' and Slurm's clients. */
export function programsFor(clusterName: string, site: SiteFeatures): string[] {
  const daemons = sampleNodes().flatMap((n) => daemonsFor(n, clusterName, site));
  return [...new Set([...daemons.flatMap((d) => d.programs), ...CLIENT_PROGRAMS])];
}

/**
 * The shared folders' first contents where they are volumes of the cluster (made empty): a
 * 0700 home per user, and /shared writable by all. Leaves what exists as it is.
 */
function siteFolders(users: string[]): Daemon {
  return {
    name: 'site folders',
    step: true,
    start: [
      'chmod 1777 /shared',
      ...users.map((u) => `[ -d /home/${u} ] || install -d -m 0700 -o ${u} -g "$(id -g ${u})" /home/${u}`),
    ].join('\n'),
    programs: ['install', 'id'],
  };
}

/**
 * The cluster's folders that every node sees, served by the head where volumes stay on their
 * host: GlusterFS volume name, where nodes mount it, and the mode of its top folder. The work
 * folder (batches: their manifests, claims and status files) is root's alone.
 */
const SERVED = [
  { volume: 'home', at: '/home', mode: '0755' },
  { volume: 'shared', at: '/shared', mode: '1777' },
  { volume: 'work', at: NODE_WORK, mode: '0700' },
] as const;
const SHARED_FOLDERS = SERVED.map((f) => f.volume);
/** Where the head keeps the GlusterFS bricks of SHARED_FOLDERS (a volume of the head). */
const BRICKS = '/srv/slurmkit/bricks';

/**
 * The head's GlusterFS server: one volume per shared folder, a single brick each in a volume of
 * the head, made on first boot (glusterd keeps their definitions in /var/lib/glusterd, also a
 * volume, so `start` finds them). Reached by the head's address: no name lookup.
 */
function glusterServer(address: string): Daemon {
  const gluster = 'gluster --mode=script';
  return {
    name: 'glusterd',
    start: [
      `mkdir -p /var/log/glusterfs ${SHARED_FOLDERS.map((v) => `${BRICKS}/${v}`).join(' ')}`,
      'glusterd --log-file=/var/log/slurm/glusterd.log',
      `for _ in $(seq 100); do ${gluster} volume list >/dev/null 2>&1 && break; sleep 0.1; done`,
      ...SHARED_FOLDERS.map((v) =>
        [
          `${gluster} volume info ${v} >/dev/null 2>&1 || ${gluster} volume create ${v} ${address}:${BRICKS}/${v} force >/dev/null`,
          // force: starts a brick process that is not running, on a volume already started too.
          `${gluster} volume start ${v} force >/dev/null`,
        ].join('\n'),
      ),
    ].join('\n'),
    programs: ['glusterd', 'gluster'],
  };
}

/** Mounts the shared folders from the head's GlusterFS server (FUSE); a folder already mounted is left as it is. */
function glusterMounts(address: string): Daemon {
  return {
    name: 'glusterfs',
    start: SERVED.map(({ volume: v, at, mode }) =>
      [
        `mkdir -p ${at}`,
        `if ! mountpoint -q ${at}; then`,
        `  for _ in $(seq 50); do mount -t glusterfs -o log-file=/var/log/slurm/glusterfs-${v}-$(hostname).log ${address}:/${v} ${at} && break; sleep 0.2; done`,
        `  mountpoint -q ${at} || { echo "${at}: could not mount ${address}:/${v}" >&2; exit 1; }`,
        'fi',
        `chmod ${mode} ${at}`,
      ].join('\n'),
    ).join('\n'),
    programs: ['mount.glusterfs', 'mountpoint'],
  };
}

/** Where the login node sees each user's Jupyter token (root's files, placed or bound read-only). */
export const JUPYTER_TOKENS = '/run/slurmkit/jupyter';
/** User i's (in spec order) Jupyter server listens on this port plus i, on the login node's address. */
export const JUPYTER_PORT = 8888;
/** Where the login node finds slurmkit's Python module (`from slurmkit_run import run`): slurmkit's own dist/python. */
export const PYTHON_MODULES = fileURLToPath(new URL('../python/', import.meta.url)).replace(/\/+$/, '');

/**
 * A Jupyter notebook server (Debian's jupyter-notebook) per cluster user, run as that user in
 * their home, on every address of the login node's own network namespace: its cluster address,
 * and where a provider publishes the port (swarm), the address the engine forwards it to. The
 * token comes from a root-only file through the environment (JUPYTER_TOKEN): never an argument,
 * and a token it was given Jupyter does not print; tokens in requests' addresses are hidden in
 * its log (src/python/jupyter_notebook_config.py). slurmkit's Python module is on the kernels' path.
 */
function jupyterServers(address: string, users: string[]): Daemon {
  return {
    name: 'jupyter',
    step: true,
    rerun: true,
    start: users
      .map((u, i) =>
        [
          // A server that answers is left as it is.
          `if ! (exec 3<>/dev/tcp/${address}/${JUPYTER_PORT + i}) 2>/dev/null; then`,
          `( export HOME=/home/${u} PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin PYTHONPATH=${PYTHON_MODULES} JUPYTER_TOKEN="$(cat ${JUPYTER_TOKENS}/${u})"`,
          `  cd /home/${u} && exec setsid runuser -u ${u} -- jupyter-notebook --config=${PYTHON_MODULES}/jupyter_notebook_config.py --no-browser --ip=0.0.0.0 --port=${JUPYTER_PORT + i} --port-retries=0 --notebook-dir=/home/${u} ) >> /var/log/slurm/jupyter-${u}.log 2>&1 < /dev/null &`,
          'fi',
        ].join('\n'),
      )
      .join('\n'),
    programs: ['jupyter-notebook', 'runuser', 'setsid'],
  };
}

/**
 * The environment slurmd starts with, and passes to every slurmstepd it forks (one per job and
 * step). hwloc otherwise loads, links and unloads its GPU, OpenCL, PCI and libxml2 plugins (with
 * libX11 and ICU) in each slurmstepd: a third of a short job's CPU time on the node. Without
 * them slurmd finds the same CPUs and memory (`slurmd -C` prints the same) and reads hwloc's
 * XML with its own parser. HWLOC_PLUGINS_BLACKLIST: hwloc's "Environment Variables" documentation
 * (https://www.open-mpi.org/projects/hwloc/doc/), section "Components and plugins".
 */
const SLURMD_ENV = 'export HWLOC_PLUGINS_BLACKLIST=hwloc_gl,hwloc_opencl,hwloc_pci,hwloc_xml_libxml';

/**
 * Daemons per role, in start order. `configFrom` (the head's address) is for nodes that do not
 * see the cluster folder: a worker then runs a munged of its own and fetches Slurm's
 * configuration from slurmctld (configless). `sharedFrom` (the head's address) is for nodes
 * whose volumes stay on their host: /home and /shared then come from the head's GlusterFS server.
 */
export function daemonsFor(node: NodeRecord, clusterName: string, site: SiteFeatures = NO_SITE, configFrom?: string, sharedFrom?: string): Daemon[] {
  const shared = configFrom === undefined;
  const served = sharedFrom === undefined ? [] : [...(node.role === 'head' ? [glusterServer(sharedFrom)] : []), glusterMounts(sharedFrom)];
  // Its own munged with the cluster's key, placed into the node at start (nodes that do not share this machine).
  const ownMunged: Daemon = {
    name: 'munged',
    start: 'mkdir -p -m 0755 /run/munge && munged --seed-file=/etc/munge/munge.seed --log-file=/var/log/slurm/munged-$(hostname).log --pid-file=/run/munged.pid',
    programs: ['munged'],
  };
  if (node.role === 'login') return [...served, ...(shared ? [] : [ownMunged]), ...(node.jupyter ? [jupyterServers(node.address, site.users)] : [])];
  if (node.role === 'head') {
    return [
      ...served,
      ...(shared ? [] : [siteFolders(site.users)]),
      {
        name: 'munged',
        // On the local provider the head's munged is the cluster's only one: every node reaches its
        // socket through /run/munge. Nodes that do not share this machine run their own.
        start: `${shared ? '' : 'mkdir -p -m 0755 /run/munge && '}munged --seed-file=/etc/munge/munge.seed --log-file=/var/log/slurm/munged.log --pid-file=/run/munged.pid`,
        programs: ['munged'],
      },
      // Where the database lives in a volume of the cluster, the head makes it on first boot.
      ...(site.accounting ? accountingSteps(clusterName, site.users, !shared) : []),
      {
        name: 'slurmctld',
        // Return only once slurmctld answers, so that slurmd's first registration succeeds
        // instead of waiting out its retry interval.
        start: [
          'slurmctld',
          'for _ in $(seq 300); do',
          '  scontrol ping >/dev/null 2>&1 && break',
          // Looked for twice, a moment apart: once, right after a restart, it was not found while starting.
          '  pgrep -x slurmctld >/dev/null || { sleep 0.2; pgrep -x slurmctld >/dev/null; } || { echo "slurmctld exited:" >&2; grep -E "error|fatal" /var/log/slurm/slurmctld.log | tail -5 >&2; exit 1; }',
          '  sleep 0.05',
          'done',
        ].join('\n'),
        programs: ['slurmctld', 'scontrol', 'pgrep'],
      },
      ...(site.rest ? [restStep(site.accounting)] : []),
    ];
  }
  // A node made by autoscaling says it booted (-b): slurmd would report the host's uptime, and
  // slurmctld would ignore a registration that seems older than its resume request.
  const boot = node.cloud ? ' -b' : '';
  const start = shared
    ? `${SLURMD_ENV}\nmkdir -p /var/lib/slurm/slurmd/${node.name} && slurmd${boot}`
    : [
        SLURMD_ENV,
        // Configless: slurmd fetches slurm.conf from slurmctld, which must be listening (a 22.05
        // slurmd that cannot reach it exits instead of retrying).
        `mkdir -p /var/lib/slurm/slurmd/${node.name}`,
        `for _ in $(seq 300); do (exec 3<>/dev/tcp/${configFrom}/6817) 2>/dev/null && break; sleep 0.1; done`,
        // A node added while the cluster runs registers as a dynamic node, until a slurmctld that
        // read the rewritten slurm.conf lists it (then -Z refuses the name, and plain slurmd is right).
        node.slurmdConf
          ? `slurmd --conf-server "${configFrom}:6817" -Z --conf "${node.slurmdConf}" 2>/dev/null || slurmd --conf-server "${configFrom}:6817"`
          : `slurmd${boot} --conf-server "${configFrom}:6817"`,
      ].join('\n');
  return [
    ...served,
    // On nodes sandboxed with network=cluster, what jobs may not reach (other nodes: nothing).
    { name: 'sandbox firewall', step: true, start: `if [ -x ${SANDBOX_NET} ]; then ${SANDBOX_NET}; fi`, programs: [] },
    ...(shared ? [] : [ownMunged]),
    {
      name: 'slurmd',
      start,
      programs: ['slurmd'],
      // SIGTERM stops slurmd alone: running jobs live on in their slurmstepd.
      restart: [
        // A head node that was recreated has a new MAC address: forget the old one at once, or
        // slurmd's first registration waits seconds for ARP to notice.
        'ip neigh flush all 2>/dev/null || true',
        'p=$(cat /run/slurmd.pid 2>/dev/null || true)',
        'if [ -n "$p" ] && kill -TERM "$p" 2>/dev/null; then',
        '  for _ in $(seq 200); do kill -0 "$p" 2>/dev/null || break; sleep 0.05; done',
        '  if kill -0 "$p" 2>/dev/null; then echo "slurmd ($p) did not stop within 10 s" >&2; exit 1; fi',
        'fi',
        start,
      ].join('\n'),
    },
  ];
}

export function mountsFor(node: NodeRecord, paths: ClusterPaths, site: SiteFeatures = NO_SITE, configless = false, served = false): Mount[] {
  const sp = sitePaths(paths);
  // Without the cluster folder (configless), each node has its own munged; its keys,
  // configuration, names and accounts are files placed into it at start (a worker fetches
  // Slurm's configuration from slurmctld), and what outlives a node is in volumes of the cluster.
  const own = configless;
  const mounts: Mount[] = [
    // A private /tmp per node: PMIx and others create per-step files there that must not collide.
    { type: 'tmpfs', target: '/tmp', mode: '1777' },
    { type: 'tmpfs', target: '/dev/shm', mode: '1777' },
    { type: 'tmpfs', target: '/run', mode: '0755' },
    ...(own
      ? ([
          // Slurm's state: the head's in a volume (a worker's spool is its own); the logs of every node in one.
          ...(node.role === 'head' ? [{ type: 'volume', name: 'slurm-state', target: '/var/lib/slurm' } as const] : []),
          { type: 'volume', name: 'logs', target: '/var/log/slurm' },
          // Where volumes stay on their host, the head serves /home and /shared (GlusterFS) from bricks in its volumes.
          ...(served
            ? node.role === 'head'
              ? ([
                  { type: 'volume', name: 'gluster-bricks', target: '/srv/slurmkit' },
                  { type: 'volume', name: 'gluster-state', target: '/var/lib/glusterd' },
                ] as const)
              : []
            : ([
                { type: 'volume', name: 'home', target: '/home' },
                { type: 'volume', name: 'shared', target: '/shared' },
                { type: 'volume', name: 'work', target: NODE_WORK },
              ] as const)),
        ] as const)
      : ([
          { type: 'bind', source: paths.mungeRun, target: '/run/munge' },
          { type: 'bind', source: paths.hosts, target: '/etc/hosts', readOnly: true },
          { type: 'bind', source: paths.slurmEtc, target: '/etc/slurm', readOnly: true },
          { type: 'bind', source: paths.slurmLib, target: '/var/lib/slurm' },
          { type: 'bind', source: paths.logs, target: '/var/log/slurm' },
          // The cluster's own accounts, home and data folder: the same on every node, the host's untouched.
          { type: 'bind', source: sp.passwd, target: '/etc/passwd', readOnly: true },
          { type: 'bind', source: sp.group, target: '/etc/group', readOnly: true },
          { type: 'bind', source: sp.home, target: '/home' },
          { type: 'bind', source: sp.shared, target: '/shared' },
          ...hideOtherClusters(paths),
        ] as const)),
  ];
  if (node.role === 'head' && own) {
    // Its secrets (munge key, JWT key, blob account, database password) are placed files in memory.
    mounts.push({ type: 'tmpfs', target: '/etc/munge', mode: '0700' });
    mounts.push({ type: 'tmpfs', target: HEAD_SECRETS, mode: '0700' });
    if (site.accounting) mounts.push({ type: 'volume', name: 'mysql', target: '/var/lib/mysql' });
  } else if (node.role === 'head') {
    // The head runs every service that needs a secret; it gets them before the folder is hidden.
    mounts.push({ type: 'bind', source: paths.secrets, target: HEAD_SECRETS, readOnly: true });
    mounts.push({ type: 'bind', source: paths.mungeEtc, target: '/etc/munge' });
    if (site.rest) mounts.push({ type: 'bind', source: sp.rest, target: '/run/slurmrestd' });
    if (site.accounting) {
      mounts.push({ type: 'bind', source: sp.mysqlData, target: '/var/lib/mysql' });
      mounts.push({ type: 'bind', source: sp.dbSecrets, target: '/etc/mysql' });
      // slurmdbd reads its config (with the database password) next to slurm.conf.
      mounts.push({ type: 'bind', source: sp.slurmdbdConfSecret, target: '/etc/slurm/slurmdbd.conf', readOnly: true });
    }
  } else if (own) {
    // The key is placed here at start (NodeSpec.files), in memory only.
    mounts.push({ type: 'tmpfs', target: '/etc/munge', mode: '0700' });
  } else {
    // Workers authenticate through the head's munged socket and need no key: not even the host's.
    mounts.push({ type: 'tmpfs', target: '/etc/munge', mode: '0700', readOnly: true });
  }
  // The login node's Jupyter tokens (root's), bound before the secrets folder is covered below.
  if (node.role === 'login' && node.jupyter && !own) mounts.push({ type: 'bind', source: paths.jupyterTokens, target: JUPYTER_TOKENS, readOnly: true });
  // The cluster's secrets folder, at its host path, is an empty read-only folder in every node.
  if (!own) mounts.push({ type: 'tmpfs', target: paths.secrets, mode: '0700', readOnly: true });
  return mounts;
}

/**
 * A node sees its own cluster's folder at its host path (batch tasks read their manifest there),
 * but no other cluster's: the clusters folder is covered by an empty tmpfs and only this
 * cluster's folder is bound back, through a staging path taken before the cover.
 */
function hideOtherClusters(paths: ClusterPaths): Mount[] {
  const staging = '/run/slurmkit/cluster';
  return [
    { type: 'bind', source: paths.root, target: staging },
    { type: 'tmpfs', target: dirname(paths.root), mode: '0700' },
    { type: 'bind', source: staging, target: paths.root },
    // Covered again, so the staging path does not show the folder's hidden parts.
    { type: 'tmpfs', target: staging, mode: '0700', readOnly: true },
  ];
}

/**
 * What the provider makes of a node. With `configFrom` (the head's address; for nodes that do
 * not share this machine), the node gets its keys, names and accounts as files (and the head
 * the volumes its `services` need) and a worker fetches the rest from slurmctld.
 */
export async function nodeSpecFor(
  node: NodeRecord,
  paths: ClusterPaths,
  clusterName: string,
  site: SiteFeatures = NO_SITE,
  configFrom?: string,
  services: HeadNeeds[] = [],
  sharedFrom?: string,
): Promise<NodeSpec> {
  const own = configFrom !== undefined;
  const boot = daemonsFor(node, clusterName, site, configFrom, sharedFrom).map((d) => d.start);
  return {
    hostname: node.name,
    ...(node.host ? { host: node.host } : {}),
    ...(sharedFrom !== undefined ? { fuse: true } : {}),
    index: node.index,
    address: node.address,
    mounts: [...mountsFor(node, paths, site, own, sharedFrom !== undefined), ...services.flatMap((s) => s.mounts ?? [])],
    ...(services.some((s) => s.ports?.length) ? { ports: services.flatMap((s) => s.ports ?? []) } : {}),
    ...(node.role === 'login' && node.jupyter ? { ports: site.users.map((_, i) => JUPYTER_PORT + i) } : {}),
    ...(own ? { files: await placedFiles(node, paths, site) } : {}),
    ...((await sandboxedNodeNames(paths.slurmEtc)).has(node.name) ? { sandbox: true } : {}),
    boot: (own ? [mergeAccounts(), ...boot] : boot).join('\n'),
    consoleLog: paths.consoleLog(node.name),
  };
}

/** Where a node that does not see the cluster folder finds the cluster's own users and groups. */
const CLUSTER_ACCOUNTS = '/etc/slurmkit';

/**
 * The node's /etc/passwd and /etc/group: its own system accounts (the image's: their ids need
 * not be this machine's) and the cluster's users and groups, placed at CLUSTER_ACCOUNTS.
 */
function mergeAccounts(): string {
  return [
    'for f in passwd group; do',
    `  { awk -F: '$3 < ${MIN_ID} || $3 > ${MAX_ID}' /etc/$f; cat ${CLUSTER_ACCOUNTS}/$f; } > /etc/$f.slurmkit && mv /etc/$f.slurmkit /etc/$f`,
    'done',
  ].join('\n');
}

/**
 * What a node that does not see the cluster folder gets as files at start: the munge key
 * (root's, 0400, in a tmpfs), /etc/hosts and the cluster's accounts; the head also Slurm's
 * configuration, the JWT key and, with accounting, slurmdbd.conf and the database's setup SQL
 * (root's, 0600), which hold the database password.
 */
async function placedFiles(node: NodeRecord, paths: ClusterPaths, site: SiteFeatures): Promise<NodeFile[]> {
  const sp = sitePaths(paths);
  const clusterOnly = (text: string) => text.split('\n').filter((l) => /^[^:]+:[^:]*:(\d+):/.test(l) && !isSystemLine(l)).map((l) => `${l}\n`).join('');
  const files: NodeFile[] = [
    { path: '/etc/munge/munge.key', content: await readFile(paths.mungeKey), mode: 0o400 },
    { path: '/etc/hosts', content: await readFile(paths.hosts), mode: 0o644 },
    { path: `${CLUSTER_ACCOUNTS}/passwd`, content: clusterOnly(await readFile(sp.passwd, 'utf8')), mode: 0o644 },
    { path: `${CLUSTER_ACCOUNTS}/group`, content: clusterOnly(await readFile(sp.group, 'utf8')), mode: 0o644 },
  ];
  if (node.role === 'worker') {
    // A worker fetches slurm.conf and plugstack.conf from slurmctld; what they name is placed.
    for (const name of await sandboxFiles(paths.slurmEtc)) files.push(await slurmFile(paths, name));
    return files;
  }
  if (node.role === 'login') {
    // Slurm's clients read slurm.conf themselves (a 22.05 node without slurmd cannot fetch it),
    // and load plugstack.conf's plugins; slurmkit's programs for the daemons are not theirs.
    for (const name of (await readdir(paths.slurmEtc)).sort()) {
      if (name !== 'slurmdbd.conf' && !name.startsWith('slurmkit-')) files.push(await slurmFile(paths, name));
    }
    // Each user's Jupyter token, root's, in memory (under /run).
    if (node.jupyter) {
      for (const user of site.users) files.push({ path: `${JUPYTER_TOKENS}/${user}`, content: await readFile(join(paths.jupyterTokens, user)), mode: 0o400 });
    }
    return files;
  }
  for (const name of (await readdir(paths.slurmEtc)).sort()) {
    // slurmdbd.conf there is an empty stand-in for the nodes that share this machine.
    if (name === 'slurmdbd.conf') continue;
    files.push(await slurmFile(paths, name));
  }
  if (site.rest) files.push({ path: JWT_KEY_PATH, content: await readFile(paths.jwtKey), mode: 0o600 });
  if (site.accounting) {
    files.push({ path: '/etc/slurm/slurmdbd.conf', content: await readFile(sp.slurmdbdConfSecret), mode: 0o600 });
    files.push({ path: '/etc/mysql/init.sql', content: await readFile(join(sp.dbSecrets, 'init.sql')), mode: 0o600 });
  }
  return files;
}

/** A file of the cluster's Slurm folder, placed at /etc/slurm; slurmkit's programs for Slurm's daemons (autoscaling, the sandbox's Epilog) are run by them, so executable. */
async function slurmFile(paths: ClusterPaths, name: string): Promise<NodeFile> {
  return { path: `/etc/slurm/${name}`, content: await readFile(join(paths.slurmEtc, name)), mode: name.startsWith('slurmkit-') ? 0o755 : 0o644 };
}

/** A passwd or group line of a system account (id outside the range of the cluster's users). */
function isSystemLine(line: string): boolean {
  const id = Number(line.split(':')[2]);
  return id < MIN_ID || id > MAX_ID;
}

/**
 * The node folder that hides a host path, if any. Nodes mount their own /tmp, /run, /home, ...
 * over the host's, so a host path under one of them is not the same (or not there) inside a
 * node. SLURMKIT_HOME and slurmkit's own files must be visible in every node at the same path:
 * batch tasks run slurmkit's code and read the batch folder there.
 */
export function hiddenInNodes(hostPath: string, paths: ClusterPaths): string | undefined {
  const targets = mountsFor(sampleNodes()[0]!, paths, { accounting: true, rest: true, users: [] })
    .filter((m) => m.type === 'tmpfs' || !['/etc/hosts', '/etc/passwd', '/etc/group'].includes(m.target))
    .map((m) => m.target);
  const path = hostPath.replace(/\/+$/, '');
  return targets.find((t) => path === t || path.startsWith(`${t}/`));
}
