/**
 * Bad-input fuzzing of every built-in template. Each template is filled out so that every
 * field of the spec is present, then one field at a time is replaced by a hostile value (wrong
 * types, huge numbers, unicode, newlines, slurm.conf and shell metacharacters, ...) or has its
 * key renamed. Every mutation must either be refused as SPEC_INVALID with a problem at that
 * field's path, or render config files in which no mutated text makes or ends a line.
 *
 * Deterministic: the random part comes from a seeded PRNG. A failure prints the seed, the
 * template, the path and the value; SLURMKIT_FUZZ_SEED=N reruns with another seed.
 *
 * The last test runs the real CLI (`bin/slurmkit up -f BAD.yaml`) on a few nasty specs.
 */
import { rng } from '../util/rng.js';
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { runCli as cli } from '../testing/cli.js';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { planNetwork } from '../cluster/subnet.js';
import { renderGroup, renderPasswd } from '../slurm/accounts.js';
import { renderHosts, renderSlurmConf, renderSlurmdbdConf } from '../slurm/render.js';
import { SlurmkitError } from '../util/errors.js';
import { formatPath, type Path } from './issues.js';
import { parseSpec, parseYaml, resolveSpec } from './load.js';
import { CONF_KEY, HOSTNAME, UNIX_NAME } from './schema.js';
import { listTemplates, templateText } from './templates.js';
import type { ClusterConfig } from './types.js';

const SEED = Number(process.env.SLURMKIT_FUZZ_SEED ?? 0x5eed2024);
/** Random strings and numbers per field, on top of the fixed list. */
const RANDOM_PER_FIELD = 12;


const NASTY_STRINGS = [
  '', ' ', '  x', 'NaN', 'nan', 'Infinity', '-1', '0', '1e308', '0x10', '9007199254740993', 'true', 'null', '~',
  'é', 'ünïcødé', '名前', '🚀', '\u202eevil', '\u200b', 'a\u00a0b', 'x\u2028y', 'x\u0085y',
  'a\nb', 'x\nNodeName=evil State=UP', '\r\nPartitionName=evil Nodes=ALL', 'x\r', '\n',
  'a=b', '=', 'a==b', '#', 'x #comment', 'x#y', 'a b', 'a\tb', 'a,b', '[', 'c[1-99999999]', 'c[', 'c]', '&', '|', ':', 'a:b',
  '$(reboot)', '`id`', '${HOME}', 'a;b', ';rm -rf /', '&& true', "'q'", '"q"', "it's", 'x\\', '\\#', 'a\\\nb',
  '\0', 'a\u0000b', '\x1b[31mred', '../../etc/passwd', '/abs/path', '-rf', '--help',
  'x'.repeat(5000), 'é'.repeat(2000),
];
const NASTY_NUMBERS = [0, -0, -1, -0.5, 1.5, 1e308, -1e308, 2 ** 53, 2 ** 53 - 1, -(2 ** 53), 2 ** 31, 2 ** 32, 2 ** 64, Number.MIN_VALUE, NaN, Infinity, -Infinity];
const WRONG_TYPES: unknown[] = [true, false, null, [], {}, [1], [''], { a: 1 }, { 'a b': 'c d' }];
/** Appended to (and put in front of) a field's own string value, so near-valid values are tried too. */
const AFFIXES = ['\nNodeName=evil', ' #x', '#', ' ', '=x', '$(id)', '`id`', ';x', '"', "'", '\\', '\0', '\r', '\u202e', '\u2028', 'é', ','];
const NASTY_KEYS = [
  '', ' ', 'a b', 'Key\n', 'Key\nNodeName', 'K#', 'K=V', '__proto__', 'constructor', 'toString', 'é', '名', 'K;x', 'K$(id)', 'k`id`', 'K"', "K'", 'K\\', '\0', '1abc', '-x', 'x'.repeat(300),
];
const ALPHABET = [...'abcXYZ019-_.,=#;$`\'"\\ \t\n\r[]{}()/:|&*?!~@%é名🚀\0\u202e\u2028\u00a0\x1b'];

function randomString(rand: () => number): string {
  const n = 1 + Math.floor(rand() * 24);
  let s = '';
  for (let i = 0; i < n; i++) s += ALPHABET[Math.floor(rand() * ALPHABET.length)];
  return s;
}

function randomNumber(rand: () => number): number {
  const r = rand();
  if (r < 0.4) return Math.floor((rand() - 0.5) * 2 ** (1 + Math.floor(rand() * 62)));
  if (r < 0.7) return (rand() - 0.5) * 10 ** Math.floor(rand() * 40 - 10);
  return Math.floor(rand() * 70_000) - 5_000;
}

type Json = unknown;

/** Sets an own property, even "__proto__", without touching any prototype. */
function setOwn(obj: Record<string, Json> | Json[], key: PropertyKey, value: Json): void {
  Object.defineProperty(obj, key, { value, writable: true, enumerable: true, configurable: true });
}

function setAt(root: Json, path: Path, value: Json): Json {
  if (path.length === 0) return value;
  let parent = root as Record<PropertyKey, Json>;
  for (const seg of path.slice(0, -1)) parent = parent[seg] as Record<PropertyKey, Json>;
  setOwn(parent as Record<string, Json>, path[path.length - 1]!, value);
  return root;
}

/** Renames `key` of the mapping at `path`, keeping its value. */
function renameAt(root: Json, path: Path, key: string, to: string): Json {
  const map = path.reduce((v, seg) => (v as Record<PropertyKey, Json>)[seg], root) as Record<string, Json>;
  const value = map[key];
  delete map[key];
  setOwn(map, to, value);
  return root;
}

interface Field {
  path: Path;
  value: Json;
}

/** Every place in the document, the root and containers included, parents before children. */
function fields(value: Json, path: Path = []): Field[] {
  const out: Field[] = [{ path, value }];
  if (Array.isArray(value)) value.forEach((v, i) => out.push(...fields(v, [...path, i])));
  else if (value !== null && typeof value === 'object') for (const [k, v] of Object.entries(value)) out.push(...fields(v, [...path, k]));
  return out;
}

const isMapping = (v: Json): v is Record<string, Json> => v !== null && typeof v === 'object' && !Array.isArray(v);

/** The template with every optional field present, so every path gets fuzzed. Must stay valid. */
function fillOut(raw: Json): Record<string, Json> {
  const spec = structuredClone(raw) as Record<string, Json>;
  const nodes = spec.nodes as Record<string, Json>[];
  nodes[0]!.features = ['ssd', 'gpu.a100'];
  nodes.push({ name: 'big', count: 2, cpus: 2, memoryMiB: 2048, features: ['bigmem'] });
  spec.partitions ??= [{ name: 'all', nodes: 'all', default: true, maxTime: 'UNLIMITED' }];
  for (const p of spec.partitions as Record<string, Json>[]) {
    // exclusive sets OverSubscribe itself; a sandboxed partition keeps its nodes to itself.
    p.extra = { Priority: 10, ...(p.exclusive === true ? {} : { OverSubscribe: 'NO' }), ExclusiveUser: false };
    if (p.sandbox !== undefined && p.nodes === 'all') p.nodes = { group: nodes[0]!.name as string };
  }
  (spec.partitions as Json[]).push({ name: 'bigq', nodes: { group: 'big' }, default: false, maxTime: 30, extra: {} });
  spec.slurm = { slurmdTimeoutSeconds: 30, extraConf: { SlurmctldDebug: 'debug', MaxJobCount: 5000, SchedulerParameters: 'batch_sched_delay=0,bf_interval=5', EnforcePartLimits: true } };
  // A /16, so that a valid count never makes the subnet the problem instead of the count.
  spec.network = { subnet: '10.213.0.0/16' };
  spec.users = [
    { name: 'alice', groups: ['students'] },
    { name: 'bob', uid: 2002, gid: 2002, groups: ['students', 'staff-x'] },
  ];
  spec.storage = { blob: 'azure', connectionStringFile: '/root/azure.conn' };
  spec.accounting ??= false;
  spec.rest ??= false;
  spec.provider = { type: 'local' };
  return spec;
}

const SAFE_TOKEN = /^[A-Za-z][A-Za-z0-9]*=[^\s#"'\\\p{C}]+$/u;
const HEADER = /^# Generated by slurmkit for cluster [a-z][a-z0-9-]*\. Do not edit: change the spec and re-run\.$/;
const INVISIBLE = /[\p{C}\u2028\u2029]/u;

function rendered(cfg: ClusterConfig): { slurm: string; dbd: string; hosts: string; passwd: string; group: string } {
  const net = planNetwork(cfg.network.subnet ?? '10.213.7.0/24', cfg.head.hostname, cfg.nodes.map((n) => n.name), cfg.login?.hostname);
  return {
    slurm: renderSlurmConf(cfg, net),
    dbd: renderSlurmdbdConf(cfg, { storagePass: 'fuzz-password-0123456789' }),
    hosts: renderHosts(cfg, net),
    passwd: renderPasswd('', cfg.users),
    group: renderGroup('', cfg.unixGroups),
  };
}

/** Comment lines slurmkit writes, from the filled-out templates with every section switched on and off. */
function knownComments(bases: Record<string, Json>[]): Set<string> {
  const out = new Set<string>();
  for (const base of bases) {
    for (const [accounting, rest, extra] of [[false, false, {}], [true, true, { A: 'b' }], [true, false, {}], [false, true, { A: 'b' }]] as const) {
      const spec = structuredClone(base);
      Object.assign(spec, { accounting, rest });
      (spec.slurm as Record<string, Json>).extraConf = extra;
      const files = rendered(resolveSpec(spec, 'fuzz base'));
      for (const text of [files.slurm, files.dbd]) for (const line of text.split('\n')) if (line.startsWith('#') && !HEADER.test(line)) out.add(line);
    }
    // A large cluster gets settings (and their comments) of its own.
    const big = structuredClone(base);
    (big.nodes as Record<string, Json>[])[0]!.count = 300;
    for (const line of rendered(resolveSpec(big, 'fuzz base')).slurm.split('\n')) if (line.startsWith('#') && !HEADER.test(line)) out.add(line);
  }
  return out;
}

/** What an accepted spec must look like once rendered: nothing it says starts, ends or comments out a line. */
function checkRendered(cfg: ClusterConfig, comments: Set<string>): void {
  const files = rendered(cfg);
  for (const [name, text] of Object.entries({ 'slurm.conf': files.slurm, 'slurmdbd.conf': files.dbd })) {
    let nodeLines = 0;
    let partitionLines = 0;
    for (const line of text.split('\n')) {
      if (line === '') continue;
      if (line.startsWith('#')) {
        assert.ok(HEADER.test(line) || comments.has(line), `${name}: unexpected comment line ${JSON.stringify(line)}`);
        continue;
      }
      const tokens = line.split(' ');
      for (const t of tokens) assert.match(t, SAFE_TOKEN, `${name}: unsafe pair ${JSON.stringify(t)} in line ${JSON.stringify(line)}`);
      if (tokens[0]!.startsWith('NodeName=')) nodeLines++;
      else if (tokens[0]!.startsWith('PartitionName=')) partitionLines++;
      else assert.equal(tokens.length, 1, `${name}: several pairs in ${JSON.stringify(line)}`);
    }
    if (name === 'slurm.conf') {
      assert.equal(nodeLines, cfg.nodes.length, 'one NodeName line per node');
      assert.equal(partitionLines, cfg.partitions.length, 'one PartitionName line per partition');
      for (const key of Object.keys(cfg.slurm.extraConf)) assert.match(key, CONF_KEY);
    }
  }
  const hostLines = files.hosts.split('\n').filter((l) => l !== '' && !l.startsWith('#'));
  assert.equal(hostLines.length, 2 + 1 + (cfg.login ? 1 : 0) + cfg.nodes.length);
  for (const line of hostLines.slice(2)) assert.match(line.split(' ')[1] ?? '', HOSTNAME, `hosts: ${JSON.stringify(line)}`);
  for (const line of files.passwd.split('\n').filter(Boolean)) {
    const f = line.split(':');
    assert.equal(f.length, 7, `passwd: ${JSON.stringify(line)}`);
    assert.match(f[0]!, UNIX_NAME);
  }
  for (const line of files.group.split('\n').filter(Boolean)) {
    const f = line.split(':');
    assert.equal(f.length, 4, `group: ${JSON.stringify(line)}`);
    assert.match(f[0]!, UNIX_NAME);
    for (const m of f[3] ? f[3].split(',') : []) assert.match(m, UNIX_NAME);
  }
}

/** A problem at `path` or inside it: "nodes[0].count: ...", "nodes[0].features[1]: ...". */
function namesPath(detail: string, path: string): boolean {
  if (path === 'spec') return true; // the whole document: any problem is inside it
  return [':', '.', '['].some((c) => detail.startsWith(path + c));
}

interface Outcome {
  rejected: number;
  accepted: number;
}

function tryMutation(what: { template: string; path: Path; mutation: string; value?: Json }, mutated: Json, comments: Set<string>, outcome: Outcome): void {
  const where = () => `seed=${SEED} template=${what.template} path=${formatPath(what.path)} mutation=${what.mutation}`;
  let cfg: ClusterConfig;
  try {
    cfg = resolveSpec(mutated, 'fuzz.yaml');
  } catch (err) {
    if (!(err instanceof SlurmkitError) || err.code !== 'SPEC_INVALID') {
      assert.fail(`${where()}: threw ${err instanceof SlurmkitError ? err.code : String((err as Error)?.stack ?? err)}`);
    }
    const want = formatPath(what.path);
    assert.ok(err.details.length > 0, `${where()}: SPEC_INVALID without details`);
    // A harmless value that is valid on its own may break another field instead (a group renamed
    // to "a" leaves a partition's c1 without a node): then the problem is rightly reported there.
    const harmless = typeof what.value === 'number' || (typeof what.value === 'string' && /^[A-Za-z0-9_.-]+$/.test(what.value));
    assert.ok(
      err.details.some((d) => namesPath(d, want)) || harmless,
      `${where()}: no problem names ${want}; got:\n${err.details.join('\n')}`,
    );
    for (const d of err.details) assert.ok(!INVISIBLE.test(d), `${where()}: detail line with an invisible character: ${JSON.stringify(d)}`);
    outcome.rejected++;
    return;
  }
  try {
    checkRendered(cfg, comments);
  } catch (err) {
    assert.fail(`${where()}: accepted, but ${(err as Error).message}`);
  }
  outcome.accepted++;
}

const show = (v: Json): string => {
  const s = typeof v === 'number' ? String(v) : JSON.stringify(v) ?? String(v);
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
};

test('every field of every template: a hostile value is refused at its path or cannot reach a config line', async () => {
  const t0 = performance.now();
  const rand = rng(SEED);
  const templates = (await listTemplates()).map((t) => t.name);
  assert.ok(templates.length >= 3, `templates: ${templates.join(', ')}`);
  const bases = await Promise.all(templates.map(async (name) => ({ name, spec: fillOut(parseYaml(await templateText(name), name)) })));
  for (const b of bases) resolveSpec(b.spec, `filled-out ${b.name}`); // the starting point is valid
  const comments = knownComments(bases.map((b) => b.spec));
  const outcome: Outcome = { rejected: 0, accepted: 0 };

  for (const { name: template, spec } of bases) {
    for (const { path, value } of fields(spec)) {
      const values: { mutation: string; value: Json }[] = [];
      if (isMapping(value) || Array.isArray(value)) {
        for (const v of [...WRONG_TYPES, 'text', 7]) values.push({ mutation: `replace with ${show(v)}`, value: v });
      } else {
        for (const v of [...NASTY_STRINGS, ...NASTY_NUMBERS, ...WRONG_TYPES]) values.push({ mutation: `set ${show(v)}`, value: v });
        if (typeof value === 'string') {
          for (const a of AFFIXES) {
            values.push({ mutation: `append ${show(a)}`, value: value + a });
            values.push({ mutation: `prepend ${show(a)}`, value: a + value });
          }
          values.push({ mutation: 'upper-case', value: value.toUpperCase() });
        }
        for (let i = 0; i < RANDOM_PER_FIELD; i++) {
          const v = i % 2 === 0 ? randomString(rand) : randomNumber(rand);
          values.push({ mutation: `random #${i} ${show(v)}`, value: v });
        }
      }
      for (const m of values) tryMutation({ template, path, mutation: m.mutation, value: m.value }, setAt(structuredClone(spec), path, m.value), comments, outcome);

      // Keys: rename each key of a mapping, and add one.
      if (isMapping(value)) {
        for (const key of Object.keys(value)) {
          for (const to of NASTY_KEYS) {
            if (to === key) continue;
            tryMutation({ template, path: [...path, to], mutation: `rename key ${show(key)} to ${show(to)}` }, renameAt(structuredClone(spec), path, key, to), comments, outcome);
          }
        }
        for (const to of NASTY_KEYS) {
          tryMutation({ template, path: [...path, to], mutation: `add key ${show(to)}` }, setAt(structuredClone(spec), [...path, to], 'v'), comments, outcome);
        }
      }
    }
  }
  const ms = Math.round(performance.now() - t0);
  // Most mutations must be refused; the accepted ones prove the render check ran.
  assert.ok(outcome.rejected > 5000 && outcome.accepted > 50, `rejected ${outcome.rejected}, accepted ${outcome.accepted}`);
  process.stderr.write(`# fuzz: seed ${SEED}, ${outcome.rejected} refused, ${outcome.accepted} accepted and rendered safely, ${ms} ms\n`);
});

/** Parses a spec that must be refused and returns its detail lines. */
function refused(yaml: string): string[] {
  try {
    parseSpec(yaml, 'bad.yaml');
  } catch (err) {
    assert.ok(err instanceof SlurmkitError && err.code === 'SPEC_INVALID', String(err));
    return err.details;
  }
  assert.fail(`accepted:\n${yaml}`);
}

function hasLine(details: string[], path: string, ...fragments: string[]): void {
  assert.ok(
    details.some((d) => d.startsWith(`${path}: `) && fragments.every((f) => d.includes(f))),
    `no problem at ${path} with ${fragments.join(', ')}; got:\n${details.join('\n')}`,
  );
}

const MIN = 'name: lab\nnodes: [{name: c, count: 2}]\n';

test('found by fuzzing: slurm.conf syntax in extraConf and partition extra values is refused', () => {
  // A trailing backslash joins the next line to this one; "\#" and quotes are parser syntax too.
  hasLine(refused(`${MIN}slurm: {extraConf: {SlurmctldDebug: 'debug\\'}}`), 'slurm.extraConf.SlurmctldDebug', 'cannot be written into slurm.conf', '"\\"');
  hasLine(refused(`${MIN}slurm: {extraConf: {Prolog: '"/x'}}`), 'slurm.extraConf.Prolog', 'cannot be written');
  hasLine(refused(`${MIN}partitions: [{name: p, extra: {AllowGroups: "a\\0b"}}]`), 'partitions[0].extra.AllowGroups', 'cannot be written', '\\u0000');
  hasLine(refused(`${MIN}partitions: [{name: p, extra: {AllowGroups: "a\\u202eb"}}]`), 'partitions[0].extra.AllowGroups', '\\u202e');
  hasLine(refused(`${MIN}slurm: {extraConf: {Foo: "${'x'.repeat(1025)}"}}`), 'slurm.extraConf.Foo', 'longer than 1024');
  hasLine(refused(`${MIN}slurm: {extraConf: {MaxJobCount: 1e300}}`), 'slurm.extraConf.MaxJobCount', '1e+300', 'plain digits');
  // Ordinary values still pass, "=" and "," included.
  const cfg = parseSpec(`${MIN}slurm: {extraConf: {SchedulerParameters: "bf_interval=5,bf_max_job_test=100", MaxJobCount: 5000, Prolog: /etc/slurm/prolog.sh, Constructor: x}}`, 'ok.yaml');
  assert.deepEqual(cfg.slurm.extraConf, { SchedulerParameters: 'bf_interval=5,bf_max_job_test=100', MaxJobCount: '5000', Prolog: '/etc/slurm/prolog.sh', Constructor: 'x' });
});

test('found by fuzzing: "constructor" is a key like any other, "__proto__" is not silently dropped', () => {
  assert.deepEqual(parseSpec(`${MIN}slurm: {extraConf: {constructor: x}}`, 'ok.yaml').slurm.extraConf, { constructor: 'x' });
  hasLine(refused(`${MIN}slurm: {extraConf: {__proto__: {NodeName: evil}}}`), 'slurm.extraConf.__proto__', 'not a valid key');
  hasLine(refused(`${MIN}partitions: [{name: p, extra: {__proto__: 1}}]`), 'partitions[0].extra.__proto__', 'not a valid key');
});

test('found by fuzzing: absurd sizes are refused', () => {
  hasLine(refused('name: lab\nnodes: [{name: c, count: 2, memoryMiB: 9007199254740991}]'), 'nodes[0].memoryMiB', 'at most 1073741824');
  hasLine(refused(`${MIN}partitions: [{name: p, maxTime: 9007199254740991}]`), 'partitions[0].maxTime', 'at most 52560000');
  assert.equal(parseSpec(`${MIN}partitions: [{name: p, maxTime: 52560000}]`, 'ok.yaml').partitions[0]?.maxTime, 52560000);
});

test('found by fuzzing: problems stay on one line whatever the spec says', () => {
  const details = refused(`name: "lab\\n- injected"\nnodes: [{name: c, count: 2, "x\\ny": 1, "\\e[2J": 2}]\nstorage: {blob: azure, connectionStringFile: "/root/a\\nb"}\n`);
  for (const d of details) assert.ok(!/[\p{C}\u2028\u2029]/u.test(d), JSON.stringify(d));
  hasLine(details, 'name', '"lab\\n- injected"');
  hasLine(details, 'nodes[0]["x\\ny"]', 'unknown key "x\\ny"');
  hasLine(details, 'nodes[0]["\\u001b[2J"]', 'unknown key "\\u001b[2J"');
  hasLine(details, 'storage.connectionStringFile', 'control or invisible character');
});

// -------------------------------------------------------------------------------------------
// The real CLI: exit 2, the field on stderr, nothing created.
// -------------------------------------------------------------------------------------------

let cliHome: string | undefined;

after(async () => {
  if (!cliHome) return;
  // Should a bad spec ever be accepted, the cluster it made must not outlive the test.
  const made = existsSync(join(cliHome, 'clusters')) ? await readdir(join(cliHome, 'clusters')) : [];
  for (const name of made) await runCli(cliHome, ['down', name, '--force']);
  if (made.length > 0) await runCli(cliHome, ['gc']);
  await rm(cliHome, { recursive: true, force: true });
});

const runCli = (home: string, args: string[]) => cli(args, { home, bin: true, timeoutMs: 60_000 });

test('bin/slurmkit up -f BAD.yaml exits 2, names the field on stderr, and creates nothing', async () => {
  // Under SLURMKIT_HOME when the caller set one (tests of real clusters keep out of /tmp), else /var/tmp.
  const parent = process.env.SLURMKIT_HOME ?? '/var/tmp';
  await mkdir(parent, { recursive: true });
  cliHome = await mkdtemp(join(parent, 'fuzz-cli-'));
  const minimal = await templateText('minimal', { name: 'fuzzcli' });
  const cases: { name: string; yaml: string; field: string }[] = [
    { name: 'newline in extraConf', yaml: `${minimal}\nslurm:\n  extraConf: {SlurmctldDebug: "debug\\nNodeName=evil State=UP"}\n`, field: 'slurm.extraConf.SlurmctldDebug' },
    { name: 'backslash continues the line', yaml: `${minimal}\nslurm:\n  extraConf: {SlurmctldDebug: 'debug\\'}\n`, field: 'slurm.extraConf.SlurmctldDebug' },
    { name: 'comment in a partition extra', yaml: `${minimal}\npartitions: [{name: all, extra: {AllowGroups: "students#x"}}]\n`, field: 'partitions[0].extra.AllowGroups' },
    { name: 'shell in a group name', yaml: minimal.replace('- name: c ', '- name: "c$(reboot)" '), field: 'nodes[0].name' },
    { name: 'huge count', yaml: minimal.replace('count: 2 ', 'count: 1e308 '), field: 'nodes[0].count' },
    { name: 'unicode feature', yaml: minimal.replace('memoryMiB: 1024', 'memoryMiB: 1024\n    features: ["gpü"]'), field: 'nodes[0].features[0]' },
    { name: 'escape sequence in a key', yaml: `${minimal}\nslurm:\n  extraConf: {"Key\\e[31m": x}\n`, field: 'slurm.extraConf["Key\\u001b[31m"]' },
  ];
  for (const c of cases) {
    const file = join(cliHome, 'bad.yaml');
    await writeFile(file, c.yaml);
    const r = await runCli(cliHome, ['up', '-f', file]);
    assert.equal(r.code, 2, `${c.name}: exit ${r.code}\n${r.stderr}`);
    assert.ok(r.stderr.includes(`  - ${c.field}: `), `${c.name}: ${c.field} not named on stderr:\n${r.stderr}`);
    assert.ok(!/\x1b/.test(r.stderr), `${c.name}: an escape sequence reached the terminal`);
    assert.equal(r.stdout, '', `${c.name}: stdout`);
    assert.equal(existsSync(join(cliHome, 'clusters', 'fuzzcli')), false, `${c.name}: a cluster folder was created`);
  }
  const left = (await readdir(cliHome)).filter((f) => f !== 'bad.yaml');
  assert.deepEqual(left, [], 'nothing but the spec file in SLURMKIT_HOME');
});
