import { readFile, access, constants, mkdir } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { SlurmkitError } from '../util/errors.js';
import { run, which } from '../util/run.js';
import { bridgeTrafficIsFiltered, hostRoutes } from '../providers/local/network.js';
import { listStates } from './state.js';
import { pickSubnet } from './subnet.js';
import { ClusterPaths, slurmkitHome } from './paths.js';
import { hiddenInNodes } from './layout.js';
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

const PACKAGES: Record<string, string> = {
  slurmctld: 'slurmctld',
  slurmd: 'slurmd',
  munged: 'munge',
  sinfo: 'slurm-client',
  srun: 'slurm-client',
  unshare: 'util-linux',
  nsenter: 'util-linux',
  ip: 'iproute2',
  mount: 'mount',
};

const APT = 'apt-get install -y slurm-wlm munge iproute2 util-linux iptables';

async function binaryChecks(): Promise<Check[]> {
  return Promise.all(
    Object.entries(PACKAGES).map(async ([bin, pkg]) => {
      const path = await which(bin);
      return path
        ? { name: `program ${bin}`, ok: true, detail: path }
        : { name: `program ${bin}`, ok: false, detail: 'not found on PATH', fix: `apt-get install -y ${pkg}` };
    }),
  );
}

function rootCheck(): Check {
  const uid = process.getuid?.() ?? -1;
  return uid === 0
    ? { name: 'running as root', ok: true, detail: 'uid 0' }
    : { name: 'running as root', ok: false, detail: `uid ${uid}`, fix: 'the local provider creates namespaces and bridges: run slurmkit as root (sudo)' };
}

function mountPointChecks(): Check[] {
  // Nodes see the cluster's folders at Slurm's usual paths; the mount points come with the packages.
  // /shared is the one mount point no package makes: scripts/setup.sh creates it (empty; nodes mount over it).
  return ['/var/lib/slurm', '/var/log/slurm', '/etc/slurm', '/etc/munge', '/shared'].map((dir) =>
    existsSync(dir)
      ? { name: `mount point ${dir}`, ok: true, detail: 'present' }
      : { name: `mount point ${dir}`, ok: false, detail: 'missing', fix: dir === '/shared' ? 'mkdir /shared (scripts/setup.sh does this)' : APT },
  );
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

/** The checks `up` cannot do without; throws PRECONDITION with every failure and its fix. */
export async function preflight(): Promise<void> {
  const failed = [rootCheck(), ...(await binaryChecks()), ...mountPointChecks(), ...visibilityChecks()].filter((c) => !c.ok);
  if (failed.length > 0) {
    throw new SlurmkitError('PRECONDITION', `this machine is not ready for local clusters (${failed.length} problem(s))`, {
      details: failed.map((c) => `${c.name}: ${c.detail} — fix: ${c.fix}`),
      hint: 'run `slurmkit doctor` for the full report',
    });
  }
}

export async function doctor(): Promise<Check[]> {
  const checks: Check[] = [rootCheck(), ...(await binaryChecks()), ...mountPointChecks(), ...visibilityChecks()];

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
