/**
 * From YAML text to a resolved ClusterConfig. The whole spec is checked in one go and every
 * problem comes back in one SPEC_INVALID error, one detail line each:
 * `<path>: <what is wrong> — <how to fix>`.
 */
import { readFile } from 'node:fs/promises';
import { LineCounter, parseDocument } from 'yaml';
import { SlurmkitError } from '../util/errors.js';
import { checkSpec, isRecord, nodeNames, requestedNodes } from './check.js';
import { issueLines } from './issues.js';
import { specSchema, type PartitionSpec, type Spec } from './schema.js';
import type { ClusterConfig, NodeGroupConfig, PartitionConfig } from './types.js';
import { resolveUsers } from './users.js';

/** Changes the CLI makes to a spec before it is validated (e.g. `--name` on a template). */
export interface SpecOverrides {
  name?: string;
  /** Where the nodes run, whatever the spec says (`--provider`, or another spec's provider mapping). */
  provider?: string | Record<string, unknown>;
}

export async function loadSpecFile(path: string, overrides: SpecOverrides = {}): Promise<ClusterConfig> {
  return parseSpec(await readSpecText(path), path, overrides);
}

/** Reads a spec file: a missing file is NOT_FOUND, any other read error SPEC_INVALID. */
export async function readSpecText(path: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') {
      throw new SlurmkitError('NOT_FOUND', `spec file ${path} does not exist`, {
        hint: 'check the path, or write a commented example with `slurmkit init --template minimal`',
        cause: err,
      });
    }
    throw new SlurmkitError('SPEC_INVALID', `cannot read spec file ${path}: ${(err as Error).message}`, { cause: err });
  }
}

export function parseSpec(text: string, source: string, overrides: SpecOverrides = {}): ClusterConfig {
  return resolveSpec(applyOverrides(parseYaml(text, source), overrides), source);
}

/** YAML text to plain data; syntax errors are reported by line and column, all at once. */
export function parseYaml(text: string, source: string): unknown {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false });
  if (doc.errors.length > 0) {
    throw specError(
      source,
      doc.errors.map((e) => {
        const { line, col } = lineCounter.linePos(e.pos[0]);
        return `line ${line}, column ${col}: ${e.message.split('\n')[0]} — ${YAML_FIXES[e.code] ?? YAML_FIX}`;
      }),
    );
  }
  try {
    return doc.toJS();
  } catch (err) {
    // e.g. an alias bomb: the document parsed but cannot be turned into data.
    throw specError(source, [`spec: ${(err as Error).message} — ${YAML_FIX}`]);
  }
}

const YAML_FIX = 'fix the YAML near this line; quote values that contain ": " or " #"';
const YAML_FIXES: Partial<Record<string, string>> = {
  DUPLICATE_KEY: 'keep the key once',
  TAB_AS_INDENT: 'indent with spaces, not tabs',
  BAD_INDENT: 'line the keys of one mapping up, indenting with spaces',
  MULTILINE_IMPLICIT_KEY: 'a key and its ":" must be on one line; check the indentation above',
  BLOCK_AS_IMPLICIT_KEY: 'check the indentation: a nested block needs its own "key:" line',
  MISSING_CHAR: 'check the indentation, and add what is missing: a "-", a ":", or a closing quote or bracket',
  MULTIPLE_DOCS: 'keep one document per file (remove the second "---")',
};

/** Applied to the raw data so the overridden value is validated like any other. */
export function applyOverrides(raw: unknown, overrides: SpecOverrides): unknown {
  if (!isRecord(raw)) return raw;
  return {
    ...raw,
    ...(overrides.name === undefined ? {} : { name: overrides.name }),
    ...(overrides.provider === undefined ? {} : { provider: overrides.provider }),
  };
}

/** Validates plain data (parsed YAML or JSON) and applies defaults. */
export function resolveSpec(given: unknown, source: string): ClusterConfig {
  const raw = countFromAutoscale(given);
  const parsed = specSchema.safeParse(raw);
  const problems = [...(parsed.success ? [] : issueLines(parsed.error.issues, raw)), ...checkSpec(raw)];
  if (problems.length > 0 || !parsed.success) throw specError(source, problems);
  return toClusterConfig(parsed.data);
}

/** A group that autoscales may give its size as autoscale.maxNodes instead of count. */
function countFromAutoscale(raw: unknown): unknown {
  if (!isRecord(raw) || !Array.isArray(raw.nodes)) return raw;
  return {
    ...raw,
    nodes: raw.nodes.map((g: unknown) =>
      isRecord(g) && g.count === undefined && isRecord(g.autoscale) && typeof g.autoscale.maxNodes === 'number' ? { ...g, count: g.autoscale.maxNodes } : g,
    ),
  };
}

function specError(source: string, details: string[]): SlurmkitError {
  const n = details.length;
  return new SlurmkitError('SPEC_INVALID', `${source}: ${n} problem${n === 1 ? '' : 's'}`, {
    details,
    hint: '`slurmkit init --template lab` writes an example with every field explained',
  });
}

const DEFAULT_PARTITION: PartitionSpec = { name: 'all', nodes: 'all', default: true, maxTime: 'UNLIMITED', exclusive: false, extra: {} };

function toClusterConfig(spec: Spec): ClusterConfig {
  const groups: NodeGroupConfig[] = spec.nodes.map(({ autoscale, ...g }) => ({
    ...g,
    features: [...new Set(g.features)].sort(),
    ...(autoscale
      ? { autoscale: { minNodes: autoscale.minNodes, maxNodes: g.count, idleTimeoutSeconds: autoscale.idleTimeoutSeconds, resumeTimeoutSeconds: autoscale.resumeTimeoutSeconds } }
      : {}),
  }));
  // Nodes of an autoscaling group above its minNodes are powered down until jobs need them.
  const nodes = groups.flatMap((g) =>
    nodeNames(g).map((name, i) => ({
      name,
      group: g.name,
      cpus: g.cpus,
      memoryMiB: g.memoryMiB,
      features: [...g.features],
      ...(g.autoscale && i >= g.autoscale.minNodes ? { cloud: true } : {}),
    })),
  );
  const specs = spec.partitions ?? [DEFAULT_PARTITION];
  // Jobs that name no partition need a default; an explicit `default: false` everywhere is respected.
  const fallbackDefault = specs.some((p) => p.default === true) ? -1 : specs.findIndex((p) => p.default === undefined);
  const partitions: PartitionConfig[] = specs.map((p, i) => {
    const wanted = new Set(requestedNodes(p.nodes, groups));
    return {
      name: p.name,
      nodes: nodes.filter((n) => wanted.has(n.name)).map((n) => n.name),
      default: p.default ?? i === fallbackDefault,
      maxTime: p.maxTime,
      exclusive: p.exclusive,
      ...(p.sandbox ? { sandbox: { network: p.sandbox.network, writable: [...p.sandbox.writable], perf: p.sandbox.perf, ...(p.sandbox.memoryMiB ? { memoryMiB: p.sandbox.memoryMiB } : {}), ...(p.sandbox.pids ? { pids: p.sandbox.pids } : {}) } } : {}),
      extra: confStrings(p.extra),
    };
  });
  return {
    name: spec.name,
    provider: providerConfig(spec.provider),
    head: { hostname: spec.head.hostname },
    ...(spec.login ? { login: { hostname: spec.login.hostname, jupyter: spec.login.jupyter } } : {}),
    groups,
    nodes,
    partitions,
    slurm: { slurmdTimeoutSeconds: spec.slurm.slurmdTimeoutSeconds, extraConf: confStrings(spec.slurm.extraConf) },
    network: spec.network.subnet === undefined ? {} : { subnet: spec.network.subnet },
    accounting: spec.accounting,
    rest: spec.rest,
    storage: spec.storage.connectionStringFile === undefined ? { blob: spec.storage.blob } : { blob: spec.storage.blob, connectionStringFile: spec.storage.connectionStringFile },
    ...resolveUsers(spec.users),
  };
}

function providerConfig(provider: Spec['provider']): ClusterConfig['provider'] {
  if (typeof provider === 'string') {
    // A bare "swarm" has no hosts: checkSpec refuses it before this runs.
    if (provider === 'swarm') throw new Error('provider swarm without hosts');
    return { type: provider };
  }
  if (provider.type !== 'swarm') return { type: provider.type };
  // checkSpec refuses a swarm without hosts before this runs.
  const hosts = provider.hosts ?? [];
  return { type: 'swarm', hosts: hosts.map((h) => ({ ...h })), head: provider.head ?? hosts[0]!.name, ...(provider.registry ? { registry: provider.registry } : {}) };
}

/** Slurm spells booleans YES/NO. */
function confStrings(conf: Record<string, string | number | boolean>): Record<string, string> {
  return Object.fromEntries(Object.entries(conf).map(([k, v]) => [k, typeof v === 'boolean' ? (v ? 'YES' : 'NO') : String(v)]));
}
