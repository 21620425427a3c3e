import { readFile, access, constants, mkdir } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { SlurmkitError } from '../util/errors.js';
import { run, which } from '../util/run.js';
import { bridgeTrafficIsFiltered, hostRoutes } from '../providers/local/network.js';
import { listStates } from './state.js';
import { pickSubnet } from './subnet.js';
import { ClusterPaths, slurmkitHome } from './paths.js';
import { hiddenInNodes, mountsFor, programsFor, sampleNodes } from './layout.js';
import { siteHostPrograms, siteOf, type SiteFeatures } from './site.js';
import { hostPathsNeeded } from '../providers/local/init-script.js';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface Check {
  name: string;
  ok: boolean;
  /** What was found. */
  detail: string;
  /** How to fix it, when not ok. */
  fix?: string;
}

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

/**
 * Every template's site features, and every feature a spec can turn on: doctor checks what
 * any of them needs, so that a machine it passes can run them all.
 */
export async function templateSites(): Promise<{ name: string; site: SiteFeatures }[]> {
  const { listTemplates, loadTemplate } = await import('../spec/templates.js');
  const templates = await Promise.all((await listTemplates()).map(async (t) => ({ name: `template ${t.name}`, site: siteOf(await loadTemplate(t.name)) })));
  return [...templates, { name: 'specs with accounting: true or rest: true', site: { accounting: true, rest: true, users: [] } }];
}

/** What a cluster with these site features needs of this machine, each with who needs it. */
export function requirementsOf(sites: { name: string; site: SiteFeatures }[]): { programs: Map<string, string[]>; mountPoints: Map<string, string[]> } {
  const programs = new Map<string, string[]>();
  const mountPoints = new Map<string, string[]>();
  const add = (map: Map<string, string[]>, key: string, who: string) => map.set(key, [...new Set([...(map.get(key) ?? []), who])]);
  for (const p of PROVIDER_PROGRAMS) add(programs, p, 'every cluster');
  const home = resolve(slurmkitHome());
  for (const { name, site } of sites) {
    for (const p of [...programsFor('check', site), ...siteHostPrograms(site)]) add(programs, p, name);
    const paths = ClusterPaths.of('check');
    for (const node of sampleNodes()) {
      // The cluster's own folder is made by up; everything else must be on the machine already.
      for (const dir of hostPathsNeeded(mountsFor(node, paths, site))) if (!dir.startsWith(`${home}/`)) add(mountPoints, dir, name);
    }
  }
  return { programs, mountPoints };
}

const neededBy = (who: string[]) => (who.includes('every cluster') ? 'every cluster' : who.join(', '));

/** One check per program and per mount point, each with the package or command that fixes it. */
export async function requirementChecks(
  req: ReturnType<typeof requirementsOf>,
  find: (program: string) => Promise<string | undefined> = which,
  exists: (path: string) => boolean = existsSync,
): Promise<Check[]> {
  const programs = await Promise.all(
    [...req.programs].map(async ([bin, who]): Promise<Check> => {
      const path = await find(bin);
      return path
        ? { name: `program ${bin}`, ok: true, detail: path }
        : { name: `program ${bin}`, ok: false, detail: `not found on PATH (needed by ${neededBy(who)})`, fix: `apt-get install -y ${PACKAGES[bin] ?? bin}` };
    }),
  );
  const mounts = [...req.mountPoints].map(([dir, who]): Check =>
    exists(dir)
      ? { name: `mount point ${dir}`, ok: true, detail: 'present' }
      : { name: `mount point ${dir}`, ok: false, detail: `missing (needed by ${neededBy(who)})`, fix: MOUNT_POINT_FIX[dir] ?? `mkdir -p ${dir}` },
  );
  return [...programs, ...mounts];
}

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

function rootCheck(): Check {
  const uid = process.getuid?.() ?? -1;
  return uid === 0
    ? { name: 'running as root', ok: true, detail: 'uid 0' }
    : { name: 'running as root', ok: false, detail: `uid ${uid}`, fix: 'the local provider creates namespaces and bridges: run slurmkit as root (sudo)' };
}

/** slurmkit's own files and SLURMKIT_HOME must be seen by every node at the same path. */
function visibilityChecks(): Check[] {
  const home = resolve(slurmkitHome());
  const install = fileURLToPath(new URL('../../', import.meta.url)).replace(/\/+$/, '');
  const paths = ClusterPaths.of('check');
  const homeHidden = hiddenInNodes(home, paths);
  const installHidden = hiddenInNodes(install, paths);
  return [
    homeHidden
      ? {
          name: 'SLURMKIT_HOME',
          ok: false,
          detail: `${home} is under ${homeHidden}, which every node replaces with its own`,
          fix: `set SLURMKIT_HOME to a folder outside ${homeHidden}, e.g. export SLURMKIT_HOME=/var/lib/slurmkit`,
        }
      : { name: 'SLURMKIT_HOME', ok: true, detail: home },
    installHidden
      ? {
          name: 'slurmkit install folder',
          ok: false,
          detail: `${install} is under ${installHidden}, which every node replaces with its own, so batch tasks cannot run slurmkit's code`,
          fix: `put slurmkit outside ${installHidden}, e.g. git clone into /opt/slurmkit`,
        }
      : { name: 'slurmkit install folder', ok: true, detail: install },
  ];
}

/**
 * The checks `up` cannot do without, for this cluster's features (default: what every template
 * needs); throws PRECONDITION with every failure and its fix.
 */
export async function preflight(cluster?: { name: string; site: SiteFeatures }): Promise<void> {
  const req = requirementsOf(cluster ? [{ name: `cluster ${cluster.name}`, site: cluster.site }] : await templateSites());
  const failed = [rootCheck(), ...(await requirementChecks(req)), ...visibilityChecks()].filter((c) => !c.ok);
  if (failed.length > 0) {
    throw new SlurmkitError('PRECONDITION', `this machine is not ready for local clusters (${failed.length} problem(s))`, {
      details: failed.map((c) => `${c.name}: ${c.detail} — fix: ${c.fix}`),
      hint: 'run `slurmkit doctor` for the full report',
    });
  }
}

/** Everything every template needs, each with its fix. */
export async function doctor(): Promise<Check[]> {
  const checks: Check[] = [rootCheck(), ...(await requirementChecks(requirementsOf(await templateSites()))), ...visibilityChecks()];

  if (rootCheck().ok && (await which('unshare'))) {
    const r = await run('unshare', ['--net', '--uts', '--mount', '--pid', '--ipc', '--fork', 'true'], { allowFailure: true });
    checks.push(
      r.exitCode === 0
        ? { name: 'namespaces', ok: true, detail: 'net, uts, mount, pid, ipc can be created' }
        : { name: 'namespaces', ok: false, detail: r.stderr.trim(), fix: 'run on a kernel with namespaces enabled, outside a restricted container (or with --privileged)' },
    );
  }

  const filtered = await bridgeTrafficIsFiltered();
  if (filtered) {
    const ipt = await which('iptables');
    if (!ipt) {
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

  try {
    const taken = [...(await listStates()).map((s) => s.network.subnet), ...(await hostRoutes()).map((r) => r.dst)];
    checks.push({ name: 'free subnet', ok: true, detail: `next cluster gets ${pickSubnet(24, taken)}` });
  } catch (err) {
    checks.push({ name: 'free subnet', ok: false, detail: (err as Error).message, fix: 'remove unused clusters or set network.subnet' });
  }

  try {
    await mkdir(slurmkitHome(), { recursive: true, mode: 0o700 });
    await access(slurmkitHome(), constants.W_OK);
    checks.push({ name: 'state folder', ok: true, detail: slurmkitHome() });
  } catch (err) {
    checks.push({ name: 'state folder', ok: false, detail: (err as Error).message, fix: 'set SLURMKIT_HOME to a writable folder outside /tmp' });
  }

  const ns = await readFile('/proc/sys/user/max_net_namespaces', 'utf8').catch(() => '');
  if (ns.trim() === '0') checks.push({ name: 'net namespaces limit', ok: false, detail: 'max_net_namespaces is 0', fix: 'sysctl -w user.max_net_namespaces=10000' });
  return checks;
}
