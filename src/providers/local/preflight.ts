/**
 * What the local provider needs of this machine: root, namespaces, every program the nodes run
 * (they run the host's binaries) and every host path their mounts need, each with its fix.
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import type { Check, PreflightRequest } from '../types.js';
import { run, which } from '../../util/run.js';
import { bridgeTrafficIsFiltered } from './network.js';
import { hostPathsNeeded } from './init-script.js';

/** The Debian package of every program slurmkit or a node runs, for the fix. */
const PACKAGES: Record<string, string> = {
  slurmctld: 'slurmctld',
  slurmd: 'slurmd',
  slurmdbd: 'slurmdbd',
  slurmrestd: 'slurmrestd',
  munged: 'munge',
  sinfo: 'slurm-client',
  srun: 'slurm-client',
  sbatch: 'slurm-client',
  squeue: 'slurm-client',
  scancel: 'slurm-client',
  scontrol: 'slurm-client',
  sacct: 'slurm-client',
  sacctmgr: 'slurm-client',
  mariadbd: 'mariadb-server',
  'mariadb-install-db': 'mariadb-server',
  mariadb: 'mariadb-client',
  'mariadb-admin': 'mariadb-client',
  unshare: 'util-linux',
  nsenter: 'util-linux',
  setpriv: 'util-linux',
  runuser: 'util-linux',
  flock: 'util-linux',
  mount: 'mount',
  ip: 'iproute2',
  pgrep: 'procps',
  tail: 'coreutils',
  bash: 'bash',
};

/** What the local provider itself runs on this machine. */
const PROVIDER_PROGRAMS = ['unshare', 'nsenter', 'setpriv', 'runuser', 'flock', 'mount', 'ip', 'bash'];

/** Mount points that come with a package; the others are made by scripts/setup.sh or by hand. */
const MOUNT_POINT_FIX: Record<string, string> = {
  '/etc/slurm': 'apt-get install -y slurm-client',
  '/var/lib/slurm': 'apt-get install -y slurmctld',
  '/var/log/slurm': 'apt-get install -y slurmctld',
  '/etc/munge': 'apt-get install -y munge',
  '/var/lib/mysql': 'apt-get install -y mariadb-server',
  '/etc/mysql': 'apt-get install -y mariadb-common',
  '/shared': 'mkdir /shared (scripts/setup.sh does this)',
};

const neededBy = (who: string[]) => (who.includes('every cluster') ? 'every cluster' : who.join(', '));
const add = (map: Map<string, string[]>, key: string, who: string[]) => map.set(key, [...new Set([...(map.get(key) ?? []), ...who])]);

/** The host paths the nodes' mounts need, each with who needs it; slurmkit's own folder excluded. */
export function mountPointsOf(req: PreflightRequest): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const { mounts, who } of req.mounts) {
    for (const dir of hostPathsNeeded(mounts)) if (!dir.startsWith(`${req.ownFolder}/`)) add(out, dir, [who]);
  }
  return out;
}

/** One check per program and per mount point, each with the package or command that fixes it. */
export async function requirementChecks(
  req: PreflightRequest,
  find: (program: string) => Promise<string | undefined> = which,
  exists: (path: string) => boolean = existsSync,
): Promise<Check[]> {
  const programs = new Map(req.programs);
  for (const p of PROVIDER_PROGRAMS) add(programs, p, ['every cluster']);
  const checks = await Promise.all(
    [...programs].map(async ([bin, who]): Promise<Check> => {
      const path = await find(bin);
      return path
        ? { name: `program ${bin}`, ok: true, detail: path }
        : { name: `program ${bin}`, ok: false, detail: `not found on PATH (needed by ${neededBy(who)})`, fix: `apt-get install -y ${PACKAGES[bin] ?? bin}` };
    }),
  );
  for (const [dir, who] of mountPointsOf(req)) {
    checks.push(
      exists(dir)
        ? { name: `mount point ${dir}`, ok: true, detail: 'present' }
        : { name: `mount point ${dir}`, ok: false, detail: `missing (needed by ${neededBy(who)})`, fix: MOUNT_POINT_FIX[dir] ?? `mkdir -p ${dir}` },
    );
  }
  return checks;
}

function rootCheck(): Check {
  const uid = process.getuid?.() ?? -1;
  return uid === 0
    ? { name: 'running as root', ok: true, detail: 'uid 0' }
    : { name: 'running as root', ok: false, detail: `uid ${uid}`, fix: 'the local provider creates namespaces and bridges: run slurmkit as root (sudo)' };
}

/** Root, programs and mount points always; with `thorough`, also namespaces and the firewall (doctor). */
export async function localPreflight(req: PreflightRequest, thorough: boolean): Promise<Check[]> {
  const checks: Check[] = [rootCheck(), ...(await requirementChecks(req))];
  if (!thorough) return checks;
  if (rootCheck().ok && (await which('unshare'))) {
    const r = await run('unshare', ['--net', '--uts', '--mount', '--pid', '--ipc', '--fork', 'true'], { allowFailure: true });
    checks.push(
      r.exitCode === 0
        ? { name: 'namespaces', ok: true, detail: 'net, uts, mount, pid, ipc can be created' }
        : { name: 'namespaces', ok: false, detail: r.stderr.trim(), fix: 'run on a kernel with namespaces enabled, outside a restricted container (or with --privileged)' },
    );
  }
  if (await bridgeTrafficIsFiltered()) {
    if (!(await which('iptables'))) {
      checks.push({ name: 'iptables', ok: false, detail: 'br_netfilter is loaded but iptables is missing', fix: 'apt-get install -y iptables' });
    } else {
      const r = await run('iptables', ['-w', '-S', 'FORWARD'], { allowFailure: true });
      const policy = /^-P FORWARD (\w+)/m.exec(r.stdout)?.[1] ?? 'unknown';
      checks.push({
        name: 'iptables FORWARD policy',
        ok: r.exitCode === 0,
        detail: r.exitCode === 0 ? `${policy}; slurmkit adds an ACCEPT rule for each cluster bridge and removes it on down` : r.stderr.trim(),
        ...(r.exitCode === 0 ? {} : { fix: 'make iptables usable (apt-get install -y iptables; load nf_tables)' }),
      });
    }
  } else {
    checks.push({ name: 'bridge filtering', ok: true, detail: 'br_netfilter not active: bridged traffic is not filtered' });
  }
  const ns = await readFile('/proc/sys/user/max_net_namespaces', 'utf8').catch(() => '');
  if (ns.trim() === '0') checks.push({ name: 'net namespaces limit', ok: false, detail: 'max_net_namespaces is 0', fix: 'sysctl -w user.max_net_namespaces=10000' });
  return checks;
}
