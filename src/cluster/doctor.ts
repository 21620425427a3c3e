/**
 * Is this machine ready? The requirements come from what clusters run (the daemons and mounts
 * of layout.ts, for every template and spec feature); the provider checks them where its nodes
 * run, and adds its own (root, namespaces, firewall for the local provider).
 */
import { access, constants, mkdir, readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SlurmkitError } from '../util/errors.js';
import type { Check, NodeProvider, PreflightRequest, ProviderOptions } from '../providers/types.js';
import { providerFor } from '../providers/registry.js';
import { listStates } from './state.js';
import { pickSubnet } from './subnet.js';
import { ClusterPaths, slurmkitHome } from './paths.js';
import { hiddenInNodes, mountsFor, programsFor, sampleNodes } from './layout.js';
import { siteHostPrograms, siteOf, type SiteFeatures } from './site.js';

export type { Check } from '../providers/types.js';

/**
 * Every template's site features, and every feature a spec can turn on: doctor checks what
 * any of them needs, so that a machine it passes can run them all.
 */
export async function templateSites(): Promise<{ name: string; site: SiteFeatures }[]> {
  const { listTemplates, loadTemplate } = await import('../spec/templates.js');
  const templates = await Promise.all((await listTemplates()).map(async (t) => ({ name: `template ${t.name}`, site: siteOf(await loadTemplate(t.name)) })));
  return [...templates, { name: 'specs with accounting: true or rest: true', site: { accounting: true, rest: true, users: [] } }];
}

/** What clusters with these site features run: programs and the mounts of each kind of node, each with who needs it. */
export function requirementsOf(sites: { name: string; site: SiteFeatures }[]): PreflightRequest {
  const programs = new Map<string, string[]>();
  const mounts: PreflightRequest['mounts'] = [];
  for (const { name, site } of sites) {
    for (const p of [...programsFor('check', site), ...siteHostPrograms(site)]) programs.set(p, [...new Set([...(programs.get(p) ?? []), name])]);
    for (const node of sampleNodes()) mounts.push({ mounts: mountsFor(node, ClusterPaths.of('check'), site), who: name });
  }
  return { programs, mounts, ownFolder: resolve(slurmkitHome()) };
}

/** slurmkit's own files and SLURMKIT_HOME must be seen by every node at the same path (nodes that share the host). */
function visibilityChecks(provider: NodeProvider): Check[] {
  if (!provider.capabilities.sharesHost) return [];
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

/** A host of a swarm whose engine did not answer, and what was seen. */
export interface LostHost {
  host: string;
  detail: string;
}

/**
 * The checks `up` cannot do without, for this cluster's provider and features (default: what
 * every template needs); throws PRECONDITION with every failure and its fix. With
 * `mayLoseHosts`, hosts whose engine does not answer are returned instead, for `up` to weigh.
 */
export async function preflight(cluster?: { name: string; site: SiteFeatures; provider?: string; options?: ProviderOptions; mayLoseHosts?: boolean }): Promise<LostHost[]> {
  const provider = providerFor(cluster?.provider ?? 'local', cluster?.options ?? {});
  const req = requirementsOf(cluster ? [{ name: `cluster ${cluster.name}`, site: cluster.site }] : await templateSites());
  let failed = [...(await provider.preflight(req)), ...visibilityChecks(provider)].filter((c) => !c.ok);
  // A host whose engine does not answer (its one check, named after it) is the caller's to weigh.
  const lost = (cluster?.mayLoseHosts ? (cluster.options?.hosts ?? []) : []).flatMap((h) => failed.filter((c) => c.name === `host ${h.name}`).map((c) => ({ host: h.name, detail: c.detail })));
  failed = failed.filter((c) => !lost.some((l) => c.name === `host ${l.host}`));
  if (failed.length > 0) {
    throw new SlurmkitError('PRECONDITION', `${provider.kind === 'swarm' ? 'the hosts are' : 'this machine is'} not ready for ${provider.kind} clusters (${failed.length} problem(s))`, {
      details: failed.map((c) => `${c.name}: ${c.detail} — fix: ${c.fix}`),
      hint: `run \`slurmkit doctor${provider.kind === 'local' ? '' : provider.kind === 'swarm' ? ' -f <spec>' : ` --provider ${provider.kind}`}\` for the full report`,
    });
  }
  return lost;
}

/**
 * What a node of the local provider costs this machine, measured at 1,000 nodes: about 4 MiB of
 * its processes (PSS: slurmd, the node's init) and 1 MiB of the kernel's (namespaces, page
 * tables); rounded up.
 */
export const NODE_COST_KIB = 6 * 1024;
/** Left to everything else on the machine: slurmctld, slurmdbd, MariaDB, Azurite, slurmkit. */
const HEADROOM_KIB = 1024 * 1024;

/** Why a cluster of `nodes` nodes does not fit in `availableKiB` of memory, or undefined when it does. */
export function memoryProblem(nodes: number, availableKiB: number): SlurmkitError | undefined {
  const needKiB = nodes * NODE_COST_KIB + HEADROOM_KIB;
  if (needKiB <= availableKiB) return undefined;
  const fits = Math.max(0, Math.floor((availableKiB - HEADROOM_KIB) / NODE_COST_KIB));
  return new SlurmkitError(
    'PRECONDITION',
    `this machine has ${Math.round(availableKiB / 1024)} MiB of memory available; ${nodes} nodes need about ${Math.round(needKiB / 1024)} MiB (${NODE_COST_KIB / 1024} MiB per node and ${HEADROOM_KIB / 1024 / 1024} GiB for the head's services)`,
    { hint: `lower nodes[].count so the cluster has at most ${fits} nodes, or free memory on this machine` },
  );
}

/** Refuses, before anything is made, a cluster of nodes on this machine that its memory cannot hold. */
export async function checkMemoryFor(nodes: number, provider: NodeProvider): Promise<void> {
  if (!provider.capabilities.sharesHost) return;
  const meminfo = await readFile('/proc/meminfo', 'utf8');
  const available = Number(/^MemAvailable:\s+(\d+) kB/m.exec(meminfo)?.[1]);
  if (Number.isNaN(available)) return;
  const problem = memoryProblem(nodes, available);
  if (problem) throw problem;
}

/** Everything every template needs on this provider, each with its fix. */
export async function doctor(kind = 'local', options: ProviderOptions = {}): Promise<Check[]> {
  const provider = providerFor(kind, options);
  const checks: Check[] = [...(await provider.preflight({ ...requirementsOf(await templateSites()), thorough: true })), ...visibilityChecks(provider)];
  try {
    const taken = [...(await listStates()).map((s) => s.network.subnet), ...(await provider.takenSubnets())];
    checks.push({ name: 'free subnet', ok: true, detail: `next cluster gets ${pickSubnet(24, taken)}` });
  } catch (err) {
    checks.push({ name: 'free subnet', ok: false, detail: (err as Error).message, fix: (err as SlurmkitError).hint ?? 'remove unused clusters or set network.subnet' });
  }
  try {
    await mkdir(slurmkitHome(), { recursive: true, mode: 0o700 });
    await access(slurmkitHome(), constants.W_OK);
    checks.push({ name: 'state folder', ok: true, detail: slurmkitHome() });
  } catch (err) {
    checks.push({ name: 'state folder', ok: false, detail: (err as Error).message, fix: 'set SLURMKIT_HOME to a writable folder outside /tmp' });
  }
  return checks;
}
