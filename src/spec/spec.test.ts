import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SlurmkitError } from '../util/errors.js';
import { applyOverrides, loadSpecFile, parseSpec, resolveSpec } from './load.js';
import { listTemplates, loadTemplate, templateText } from './templates.js';

/** Parses a spec that must be invalid and returns the error. */
function invalid(yaml: string): SlurmkitError {
  try {
    parseSpec(yaml, 'test.yaml');
  } catch (err) {
    assert.ok(err instanceof SlurmkitError, `expected a SlurmkitError, got ${String(err)}`);
    assert.equal(err.code, 'SPEC_INVALID');
    assert.equal(err.exitCode, 2);
    assert.equal(err.message, `test.yaml: ${err.details.length} problem${err.details.length === 1 ? '' : 's'}`);
    for (const d of err.details) assert.match(d, /^\S.*: .+ — .+$/, `detail line not in "<path>: <what> — <fix>" form: ${d}`);
    return err;
  }
  assert.fail('spec was accepted');
}

/** Asserts one detail line is about `path` and mentions every fragment. */
function hasProblem(err: SlurmkitError, path: string, ...fragments: (string | RegExp)[]): void {
  const lines = err.details.filter((d) => d.startsWith(`${path}: `));
  assert.ok(lines.length > 0, `no problem at ${path}; got:\n${err.details.join('\n')}`);
  const ok = lines.some((l) => fragments.every((f) => (typeof f === 'string' ? l.includes(f) : f.test(l))));
  assert.ok(ok, `no problem at ${path} mentions ${fragments.join(', ')}; got:\n${lines.join('\n')}`);
}

const NODES = 'nodes: [{name: c, count: 2}]';

test('YAML syntax errors give the line and column', () => {
  const err = invalid('name: lab\nnodes:\n  - name: c\n   count: 2\n');
  hasProblem(err, 'line 4, column 1', 'indentation');
  hasProblem(invalid(`name: lab\nname: again\n${NODES}\n`), 'line 2, column 1', 'unique', 'keep the key once');
  hasProblem(invalid(`name: lab\nnodes:\n\t- {name: c, count: 2}\n`), 'line 3, column 1', 'spaces');
});

test('an empty document or a list is not a spec', () => {
  hasProblem(invalid(''), 'spec', 'expected a mapping', 'slurmkit init');
  hasProblem(invalid('- a\n- b\n'), 'spec', 'got a list');
});

test('wrong type names the field, what was written and the fix', () => {
  hasProblem(invalid('name: lab\nnodes: [{name: c, count: eight}]'), 'nodes[0].count', 'expected a number, got "eight"', 'count is a whole number');
  hasProblem(invalid('name: lab\nnodes: [{name: c, count: "8"}]'), 'nodes[0].count', 'without quotes: count: 8');
  hasProblem(invalid('name: lab\nnodes: [{name: c, count: 2.5}]'), 'nodes[0].count', 'whole number');
  hasProblem(invalid(`name: lab\n${NODES}\npartitions: [{name: p, default: yes}]`), 'partitions[0].default', 'write default: true');
  hasProblem(invalid(`name: lab\n${NODES}\npartitions: [{name: p, maxTime: 2h}]`), 'partitions[0].maxTime', '"2h"', 'minutes or UNLIMITED');
  hasProblem(invalid(`name: lab\n${NODES}\nprovider: podman`), 'provider', '"podman"', 'provider: local', 'provider: docker');
  hasProblem(invalid('name: lab'), 'nodes', 'is missing');
});

test('unknown keys are errors that suggest the closest known key', () => {
  const err = invalid('name: lab\nnodes: [{name: c, count: 2, memory: 2G, cpu: 2}]\nslurm: {slurmdTimeout: 30}\nnetwrk: {}');
  hasProblem(err, 'nodes[0].memory', 'unknown key "memory"', 'did you mean memoryMiB?', 'memoryMiB: 2048 for 2G');
  hasProblem(err, 'nodes[0].cpu', 'did you mean cpus?');
  hasProblem(err, 'slurm.slurmdTimeout', 'did you mean slurmdTimeoutSeconds?');
  hasProblem(err, 'netwrk', 'did you mean network?');
  hasProblem(invalid(`name: lab\n${NODES}\nslurmdTimeoutSeconds: 9`), 'slurmdTimeoutSeconds', 'belongs under slurm');
  hasProblem(invalid(`name: lab\n${NODES}\nzzz: 1`), 'zzz', 'known keys here: name, provider');
});

test('memoryMiB written with a unit gets the number in MiB', () => {
  hasProblem(invalid('name: lab\nnodes: [{name: c, count: 2, memoryMiB: 2G}]'), 'nodes[0].memoryMiB', 'got "2G"', 'memoryMiB is a whole number of MiB', 'memoryMiB: 2048');
  hasProblem(invalid('name: lab\nnodes: [{name: c, count: 2, memoryMiB: 512MiB}]'), 'nodes[0].memoryMiB', 'memoryMiB: 512');
  hasProblem(invalid('name: lab\nnodes: [{name: c, count: 2, memoryMiB: 4}]'), 'nodes[0].memoryMiB', 'at least 64', 'for 4 GiB write memoryMiB: 4096');
});

test('zero or negative count is rejected', () => {
  hasProblem(invalid('name: lab\nnodes: [{name: c, count: 0}]'), 'nodes[0].count', 'at least 1, got 0', 'count: 8');
  hasProblem(invalid('name: lab\nnodes: [{name: c, count: 2}, {name: d, count: -3}]'), 'nodes[1].count', 'at least 1, got -3');
  hasProblem(invalid('name: lab\nnodes: [{name: c, count: 1001}]'), 'nodes[0].count', 'at most 1000');
});

test('a cluster without nodes is rejected', () => {
  hasProblem(invalid('name: lab\nnodes: []'), 'nodes', 'is empty', 'list at least one node group');
});

test('duplicate node names across groups are rejected, naming both groups and the nodes', () => {
  const err = invalid('name: lab\nnodes: [{name: c, count: 11}, {name: c1, count: 3}]');
  hasProblem(err, 'nodes[1].name', 'groups "c" (nodes[0]) and "c1" both make node c11', 'rename one of the groups');
  hasProblem(invalid('name: lab\nnodes: [{name: c, count: 12}, {name: c1, count: 3}]'), 'nodes[1].name', 'nodes c[11-12]');
});

test('the head hostname may not be a worker name', () => {
  hasProblem(invalid(`name: lab\nhead: {hostname: c2}\n${NODES}`), 'head.hostname', '"c2" is also a worker node of group "c"', 'choose another hostname');
});

test('duplicate group and partition names are rejected', () => {
  hasProblem(invalid('name: lab\nnodes: [{name: c, count: 1}, {name: c, count: 2}]'), 'nodes[1].name', 'group "c" is already defined at nodes[0]');
  const err = invalid(`name: lab\n${NODES}\npartitions: [{name: p}, {name: q}, {name: p}]`);
  hasProblem(err, 'partitions[2].name', 'partition "p" is already defined at partitions[0]', 'its own name');
});

test('a partition naming a missing node says which node', () => {
  const err = invalid(`name: lab\n${NODES}\npartitions: [{name: p, nodes: [c1, c9, "c[10-11]"]}, {name: q, nodes: "c[2-3]"}]`);
  hasProblem(err, 'partitions[0].nodes[1]', 'node c9 does not exist', 'name only nodes of this cluster: c[1-2]');
  hasProblem(err, 'partitions[0].nodes[2]', 'nodes c[10-11] do not exist');
  hasProblem(err, 'partitions[1].nodes', 'node c3 does not exist');
  hasProblem(invalid(`name: lab\n${NODES}\npartitions: [{name: p, nodes: {group: gpu}}]`), 'partitions[0].nodes.group', 'no node group "gpu"', 'use one of the groups: c');
  hasProblem(invalid(`name: lab\n${NODES}\npartitions: [{name: p, nodes: "c[1-"}]`), 'partitions[0].nodes', 'without a matching', 'hostlists such as');
});

test('more than one default partition is rejected', () => {
  const err = invalid(`name: lab\n${NODES}\npartitions: [{name: a, default: true}, {name: b}, {name: c, default: true}]`);
  hasProblem(err, 'partitions[2].default', 'partitions "a" and "c" are both marked default', 'on one partition only');
});

test('a bad cluster name is rejected', () => {
  hasProblem(invalid(`name: My_Lab\n${NODES}`), 'name', '"My_Lab"', 'lowercase letters');
  hasProblem(invalid(`name: ${'a'.repeat(32)}\n${NODES}`), 'name', 'e.g. name: lab');
  hasProblem(invalid(NODES), 'name', 'is missing');
});

test('slurm.conf settings owned by the spec and values that would break the file are rejected', () => {
  const err = invalid(`name: lab\n${NODES}\nslurm: {extraConf: {ClusterName: x, Foo: "a b", "1x": y}}\npartitions: [{name: p, extra: {nodes: c1}}]`);
  hasProblem(err, 'slurm.extraConf.ClusterName', 'written by slurmkit', 'set it with name');
  hasProblem(err, 'slurm.extraConf.Foo', 'cannot be written into slurm.conf');
  hasProblem(err, 'slurm.extraConf["1x"]', 'not a valid key');
  hasProblem(err, 'partitions[0].extra.nodes', 'set it with nodes');
});

test('network.subnet must be a private network of the right size', () => {
  const spec = (subnet: string, count = 2) => `name: lab\nnodes: [{name: c, count: ${count}}]\nnetwork: {subnet: ${subnet}}`;
  hasProblem(invalid(spec('8.8.8.0/24')), 'network.subnet', 'not a private network');
  hasProblem(invalid(spec('10.1.2.3/24')), 'network.subnet', 'did you mean 10.1.2.0/24?');
  hasProblem(invalid(spec('10.1.0.0/8')), 'network.subnet', '/16 to /28');
  hasProblem(invalid(spec('10.1.2.0/28', 8)), 'network.subnet', 'at most 4 workers', '10.1.2.0/27');
  hasProblem(invalid(spec('10.300.0.0/24')), 'network.subnet', 'not an IPv4 network');
  assert.equal(parseSpec(spec('192.168.50.0/24'), 't').network.subnet, '192.168.50.0/24');
});

test('every problem of the spec is reported at once', () => {
  const err = invalid('name: Bad\nhead: {hostname: c1}\nnodes: [{name: c, count: 0}, {name: c, count: 2, memory: 1G}]\npartitions: [{name: a, nodes: [c7]}, {name: a}]');
  for (const path of ['name', 'nodes[0].count', 'nodes[1].memory', 'nodes[1].name', 'head.hostname', 'partitions[1].name']) hasProblem(err, path);
  assert.ok(err.details.length >= 6);
});

test('users: every problem at once, each with its path and a fix', () => {
  const err = invalid(`name: lab
${NODES}
users:
  - {name: root}
  - {name: Alice}
  - {name: "9lives"}
  - {name: bob, uid: 0}
  - {name: bob, uid: 2001, gid: 65534}
  - {name: carol, uid: 2001, groups: [sudo, students, systemd-x]}
  - {name: dave, uid: 999, shell: /bin/zsh}
  - {name: systemd-oops, gid: 60000}
  - {name: erin, uid: "2005", group: [x]}
`);
  hasProblem(err, 'users[0].name', '"root" is a system account name', 'pick another name, e.g. alice');
  hasProblem(err, 'users[1].name', '"Alice" is not allowed here', 'write alice');
  hasProblem(err, 'users[2].name', '"9lives" is not allowed here', 'lowercase letters');
  hasProblem(err, 'users[3].uid', '0 is root', 'from 1000 to 59999');
  hasProblem(err, 'users[4].name', 'user "bob" is already defined at users[3]');
  hasProblem(err, 'users[4].gid', '65534 is nobody', 'personal group');
  hasProblem(err, 'users[5].uid', 'uid 2001 is already used by "bob" (users[4])', 'leave uid out');
  hasProblem(err, 'users[5].groups[0]', '"sudo" is a system group', 'e.g. students');
  hasProblem(err, 'users[5].groups[2]', '"systemd-x" is a system group');
  hasProblem(err, 'users[6].uid', '999 is in the system range (below 1000)');
  hasProblem(err, 'users[6].shell', 'unknown key "shell"', 'known keys here: name, uid, gid, groups');
  hasProblem(err, 'users[7].name', '"systemd-oops" is a system account name');
  hasProblem(err, 'users[7].gid', 'above 59999', 'slurm');
  hasProblem(err, 'users[8].uid', 'without quotes: uid: 2005');
  hasProblem(err, 'users[8].group', 'did you mean groups?');
  assert.equal(err.details.filter((d) => d.startsWith('users')).length, 15, err.details.join('\n'));
});

test('users: a group may not take the name of a user whose own group is another one', () => {
  const err = invalid(`name: lab\n${NODES}\nusers: [{name: alice, gid: 5000}, {name: bob, uid: 5000}, {name: carol, groups: [bob, alice]}]`);
  hasProblem(err, 'users[2].groups[1]', 'group "alice" has the name of user alice, whose primary group is "bob" (gid 5000)', 'write groups: [bob]');
  assert.equal(err.details.length, 1, err.details.join('\n'));
  // Joining another user's own group by name is fine.
  const ok = parseSpec(`name: lab\n${NODES}\nusers: [{name: alice}, {name: bob, groups: [alice]}]`, 't');
  assert.deepEqual(ok.unixGroups.find((g) => g.name === 'alice'), { name: 'alice', gid: 2001, members: ['bob'] });
});

test('users: at most 500, and misplaced keys point home', () => {
  const many = Array.from({ length: 501 }, (_, i) => `{name: u${i}}`).join(', ');
  hasProblem(invalid(`name: lab\n${NODES}\nusers: [${many}]`), 'users', 'at most 500 items');
  const err = invalid(`name: lab\n${NODES}\nuid: 2001\nslurmdbd: true\nslurm: {accounting: true}\naccounting: "yes"\nrest: 1`);
  hasProblem(err, 'uid', 'belongs under users[]');
  hasProblem(err, 'slurmdbd', 'did you mean accounting?');
  hasProblem(err, 'slurm.accounting', 'belongs under the top level');
  hasProblem(err, 'accounting', 'expected true or false', 'write accounting: true');
  hasProblem(err, 'rest', 'expected true or false', 'slurmrestd');
  hasProblem(invalid(`name: lab\n${NODES}\nslurm: {extraConf: {AccountingStorageType: accounting_storage/slurmdbd}}`), 'slurm.extraConf.AccountingStorageType', 'set accounting: true');
});

test('users: ids are allocated from 2001 past every id the spec names; groups from 3001, in order of first mention', () => {
  const cfg = parseSpec(
    `name: lab
${NODES}
users:
  - {name: ann, groups: [zeta, students, zeta]}
  - {name: ben, uid: 2001}
  - {name: cat, gid: 2003, groups: [students, ann]}
  - {name: dan, groups: [alpha]}
  - {name: eve, uid: 3001}
`,
    't',
  );
  assert.deepEqual(cfg.users, [
    { name: 'ann', uid: 2002, gid: 2002, groups: ['students', 'zeta'] },
    { name: 'ben', uid: 2001, gid: 2001, groups: [] },
    { name: 'cat', uid: 2004, gid: 2003, groups: ['ann', 'students'] },
    { name: 'dan', uid: 2005, gid: 2005, groups: ['alpha'] },
    { name: 'eve', uid: 3001, gid: 3001, groups: [] },
  ]);
  assert.deepEqual(cfg.unixGroups, [
    { name: 'ben', gid: 2001, members: [] },
    { name: 'ann', gid: 2002, members: ['cat'] },
    { name: 'cat', gid: 2003, members: [] },
    { name: 'dan', gid: 2005, members: [] },
    { name: 'eve', gid: 3001, members: [] },
    { name: 'zeta', gid: 3002, members: ['ann'] },
    { name: 'students', gid: 3003, members: ['ann', 'cat'] },
    { name: 'alpha', gid: 3004, members: ['dan'] },
  ]);
});

test('defaults: one partition "all" with every node, 1 CPU, 1024 MiB, head "head"', () => {
  const cfg = parseSpec('name: lab\nnodes: [{name: c, count: 2, features: [ssd, a, ssd]}, {name: gpu, count: 1}]', 't');
  assert.deepEqual(cfg.head, { hostname: 'head' });
  assert.deepEqual(cfg.provider, { type: 'local' });
  assert.deepEqual(parseSpec(`name: lab\n${NODES}\nprovider: docker`, 't').provider, { type: 'docker' });
  assert.deepEqual(parseSpec(`name: lab\n${NODES}\nprovider: {type: docker}`, 't').provider, { type: 'docker' });
  assert.deepEqual(cfg.nodes.map((n) => n.name), ['c1', 'c2', 'gpu1']);
  assert.deepEqual(cfg.nodes[0], { name: 'c1', group: 'c', cpus: 1, memoryMiB: 1024, features: ['a', 'ssd'] });
  assert.deepEqual(cfg.partitions, [{ name: 'all', nodes: ['c1', 'c2', 'gpu1'], default: true, maxTime: 'UNLIMITED', exclusive: false, extra: {} }]);
  assert.deepEqual(cfg.slurm, { slurmdTimeoutSeconds: 30, extraConf: {} });
  assert.deepEqual(cfg.network, {});
  assert.deepEqual([cfg.accounting, cfg.rest, cfg.users, cfg.unixGroups], [false, false, [], []]);
});

test('partition members come out expanded, deduplicated, in cluster order; the first becomes default if none is', () => {
  const cfg = parseSpec(`name: lab\nnodes: [{name: c, count: 4}, {name: g, count: 2}]\npartitions:\n  - {name: x, nodes: [g2, "c[3,1]", c1]}\n  - {name: y, nodes: {group: g}, extra: {Hidden: true, Priority: 3}}`, 't');
  assert.deepEqual(cfg.partitions.map((p) => [p.name, p.nodes, p.default]), [
    ['x', ['c1', 'c3', 'g2'], true],
    ['y', ['g1', 'g2'], false],
  ]);
  assert.deepEqual(cfg.partitions[1]?.extra, { Hidden: 'YES', Priority: '3' });
  const none = parseSpec(`name: lab\n${NODES}\npartitions: [{name: x, default: false}]`, 't');
  assert.equal(none.partitions[0]?.default, false);
});

test('applyOverrides renames before validation, so a bad --name is reported like any field', () => {
  const raw = { name: 'lab', nodes: [{ name: 'c', count: 1 }] };
  assert.equal(resolveSpec(applyOverrides(raw, { name: 'mine' }), 't').name, 'mine');
  assert.equal(raw.name, 'lab');
  assert.equal(parseSpec(`name: lab\n${NODES}`, 't', { name: 'other' }).name, 'other');
  assert.throws(() => resolveSpec(applyOverrides(raw, { name: 'Bad Name' }), 't'), (err: SlurmkitError) => err.details[0]?.startsWith('name: ') === true);
});

test('loadSpecFile reads a file and reports a missing one as NOT_FOUND', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'slurmkit-spec-'));
  try {
    const file = join(dir, 'c.yaml');
    await writeFile(file, `name: lab\n${NODES}\n`);
    assert.equal((await loadSpecFile(file, { name: 'renamed' })).name, 'renamed');
    await assert.rejects(loadSpecFile(join(dir, 'nope.yaml')), { code: 'NOT_FOUND' });
    await writeFile(file, 'name: lab\n');
    await assert.rejects(loadSpecFile(file), (err: SlurmkitError) => err.code === 'SPEC_INVALID' && err.message.startsWith(`${file}: 1 problem`));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('built-in templates are listed with descriptions and are valid', async () => {
  const templates = await listTemplates();
  assert.deepEqual(templates.map((t) => t.name), ['course', 'lab', 'minimal', 'partitions']);
  for (const t of templates) assert.ok(t.description.length > 10, `${t.name} has no description`);
  const minimal = await loadTemplate('minimal');
  assert.deepEqual(minimal.nodes.map((n) => n.name), ['c1', 'c2']);
  const lab = await loadTemplate('lab');
  assert.equal(lab.name, 'lab');
  assert.equal(lab.nodes.length, 8);
  assert.deepEqual(lab.partitions.map((p) => [p.name, p.default, p.nodes.length]), [['all', true, 8]]);
  assert.deepEqual([lab.accounting, lab.rest], [true, false]);
  assert.deepEqual(lab.users, [
    { name: 'alice', uid: 2001, gid: 2001, groups: ['students'] },
    { name: 'bob', uid: 2002, gid: 2002, groups: ['students'] },
  ]);
  assert.deepEqual(lab.unixGroups.map((g) => `${g.name}:${g.gid}:${g.members.join(',')}`), ['alice:2001:', 'bob:2002:', 'students:3001:alice,bob']);
  assert.deepEqual([minimal.accounting, minimal.users], [false, []]);
  const course = await loadTemplate('course');
  assert.deepEqual(course.login, { hostname: 'login', jupyter: true });
  assert.deepEqual(course.partitions.map((p) => [p.name, p.exclusive, p.sandbox?.network, p.nodes.length]), [['course', true, 'none', 4]]);
  assert.deepEqual([course.accounting, course.users.map((u) => u.name)], [true, ['alice', 'bob']]);
  const parts = await loadTemplate('partitions', { name: 'p2' });
  assert.equal(parts.name, 'p2');
  assert.deepEqual([parts.accounting, parts.rest, parts.users], [false, false, []]);
  assert.deepEqual(parts.partitions.map((p) => [p.name, p.default, p.nodes.join(',')]), [
    ['all', true, 'c1,c2,c3,c4,c5,c6,c7,c8'],
    ['even', false, 'c2,c4,c6,c8'],
    ['odd', false, 'c1,c3,c5,c7'],
  ]);
});

test('template text keeps its comments, and --name replaces only the name', async () => {
  const text = await templateText('lab');
  assert.match(text, /^# description: /);
  const renamed = await templateText('lab', { name: 'mylab' });
  assert.equal(renamed, text.replace(/^name: lab$/m, 'name: mylab'));
  assert.equal(parseSpec(renamed, 't').name, 'mylab');
});

test('an unknown template is NOT_FOUND with the available names as hint', async () => {
  for (const name of ['nope', '../load']) {
    await assert.rejects(templateText(name), (err: SlurmkitError) => err.code === 'NOT_FOUND' && err.hint === 'available templates: course, lab, minimal, partitions');
  }
  await assert.rejects(loadTemplate('nope'), { code: 'NOT_FOUND' });
});

test('storage: Azurite by default; a real account needs an absolute connectionStringFile; the string itself is not a key', () => {
  assert.deepEqual(parseSpec(`name: lab\n${NODES}\n`, 't.yaml').storage, { blob: 'azurite' });
  assert.deepEqual(parseSpec(`name: lab\n${NODES}\nstorage: {blob: none}\n`, 't.yaml').storage, { blob: 'none' });
  assert.deepEqual(parseSpec(`name: lab\n${NODES}\nstorage: {blob: azure, connectionStringFile: /root/a.conn}\n`, 't.yaml').storage, {
    blob: 'azure',
    connectionStringFile: '/root/a.conn',
  });
  hasProblem(invalid(`name: lab\n${NODES}\nstorage: {blob: azure}`), 'storage.connectionStringFile', 'blob: azure needs the file', 'mode 0600');
  hasProblem(invalid(`name: lab\n${NODES}\nstorage: {blob: azure, connectionStringFile: a.conn}`), 'storage.connectionStringFile', 'not an absolute path', '/root/a.conn');
  hasProblem(invalid(`name: lab\n${NODES}\nstorage: {connectionStringFile: /root/a.conn}`), 'storage.connectionStringFile', 'only used with blob: azure');
  hasProblem(invalid(`name: lab\n${NODES}\nstorage: {blob: s3}`), 'storage.blob', '"s3"', 'azurite');
  const secret = 'DefaultEndpointsProtocol=https;AccountName=a;AccountKey=c2VjcmV0';
  const err = invalid(`name: lab\n${NODES}\nstorage: {connectionString: "${secret}"}`);
  hasProblem(err, 'storage.connectionString', 'did you mean connectionStringFile');
  assert.ok(!JSON.stringify(err.details).includes('c2VjcmV0'), 'the key is not echoed');
});

test('provider swarm: hosts with their endpoints, the head on a host, and workers placed one per host in turn', async () => {
  const hosts = '[{name: h1, endpoint: "unix:///run/docker.sock"}, {name: h2, endpoint: "ssh://root@10.0.0.2", workers: 1}, {name: h3, endpoint: "tcp://10.0.0.3:2376", tlsCertPath: /root/.docker/h3}]';
  const cfg = parseSpec(`name: lab\nnodes: [{name: c, count: 5}]\nprovider: {type: swarm, head: h3, hosts: ${hosts}}`, 't');
  assert.equal(cfg.provider.type, 'swarm');
  assert.ok(cfg.provider.type === 'swarm' && cfg.provider.head === 'h3' && cfg.provider.hosts[2]!.tlsCertPath === '/root/.docker/h3');
  const { placeNodes } = await import('../cluster/placement.js');
  const placed = placeNodes(cfg.provider, 'head', cfg.nodes.map((n) => n.name))!;
  // h2 takes at most one worker; the others share the rest in turn.
  assert.deepEqual([...placed], [['head', 'h3'], ['c1', 'h1'], ['c2', 'h2'], ['c3', 'h3'], ['c4', 'h1'], ['c5', 'h3']]);
  // Left out, the head goes on the first host.
  assert.deepEqual(parseSpec(`name: lab\n${NODES}\nprovider: {type: swarm, hosts: ${hosts}}`, 't').provider, { ...cfg.provider, head: 'h1' });
});

test('partition exclusive: true or false; a clashing extra.OverSubscribe is refused at its field', () => {
  const cfg = parseSpec(`name: lab\n${NODES}\npartitions: [{name: exam, exclusive: true}, {name: all}]`, 't');
  assert.deepEqual(cfg.partitions.map((p) => [p.name, p.exclusive]), [['exam', true], ['all', false]]);
  hasProblem(invalid(`name: lab\n${NODES}\npartitions: [{name: exam, exclusive: "yes"}]`), 'partitions[0].exclusive', 'expected true or false', 'write exclusive: true');
  hasProblem(
    invalid(`name: lab\n${NODES}\npartitions: [{name: exam, exclusive: true, extra: {oversubscribe: "FORCE:2"}}]`),
    'partitions[0].extra.oversubscribe',
    'conflicts with exclusive: true',
    'remove extra.oversubscribe',
  );
  // Without exclusive, OverSubscribe in extra stays the user's to set.
  assert.deepEqual(parseSpec(`name: lab\n${NODES}\npartitions: [{name: p, extra: {OverSubscribe: "FORCE:2"}}]`, 't').partitions[0]!.extra, { OverSubscribe: 'FORCE:2' });
});

test('partition sandbox: settings read; other providers, a node sandboxed unlike in two partitions, a user Epilog and bad values refused at their fields', () => {
  const cfg = parseSpec(`name: lab\nnodes: [{name: c, count: 2}, {name: d, count: 1}]\npartitions: [{name: exam, nodes: {group: c}, sandbox: {memoryMiB: 256, pids: 100, writable: [/scratch]}}, {name: open, nodes: {group: d}}]`, 't');
  assert.deepEqual(cfg.partitions[0]!.sandbox, { network: 'none', memoryMiB: 256, pids: 100, writable: ['/scratch'], perf: true });
  assert.equal(parseSpec('name: lab\nnodes: [{name: c, count: 1}]\npartitions: [{name: exam, sandbox: {perf: false}}]', 't').partitions[0]!.sandbox?.perf, false);
  hasProblem(invalid('name: lab\nnodes: [{name: c, count: 1}]\npartitions: [{name: exam, sandbox: {perf: "no"}}]'), 'partitions[0].sandbox.perf');
  assert.equal(cfg.partitions[1]!.sandbox, undefined);
  assert.equal(parseSpec(`name: lab\n${NODES}\npartitions: [{name: exam, sandbox: {network: cluster}}]`, 't').partitions[0]!.sandbox?.network, 'cluster');
  hasProblem(invalid(`name: lab\n${NODES}\npartitions: [{name: exam, sandbox: {network: cluster}}]\nslurm: {extraConf: {SrunPortRange: 1000-2000}}`), 'slurm.extraConf.SrunPortRange', 'reach srun on the ports slurmkit sets');
  assert.equal(parseSpec(`name: lab\n${NODES}\nprovider: {type: swarm, hosts: [{name: h1, endpoint: "unix:///a.sock"}]}\npartitions: [{name: exam, sandbox: {}}]`, 't').partitions[0]!.sandbox?.network, 'none');
  assert.equal(parseSpec(`name: lab\n${NODES}\nprovider: docker\npartitions: [{name: exam, sandbox: {}}]`, 't').partitions[0]!.sandbox?.network, 'none');
  hasProblem(invalid(`name: lab\n${NODES}\npartitions: [{name: exam, sandbox: {}}, {name: all}]`), 'partitions[0].sandbox', 'also in partition all, which is not sandboxed');
  hasProblem(invalid(`name: lab\n${NODES}\npartitions: [{name: exam, sandbox: {}}]\nslurm: {extraConf: {Epilog: /x}}`), 'slurm.extraConf.Epilog', "runs slurmkit's Epilog");
  const bad = invalid(`name: lab\n${NODES}\npartitions: [{name: exam, sandbox: {network: host, pids: 2, writable: [tmp]}}]`);
  hasProblem(bad, 'partitions[0].sandbox.network');
  hasProblem(bad, 'partitions[0].sandbox.pids');
  hasProblem(bad, 'partitions[0].sandbox.writable[0]');
});

test('login node: hostname and jupyter read (default hostname login, no Jupyter); a clash with a worker or the head, Jupyter without users, other providers and bad values refused at their fields', () => {
  assert.equal(parseSpec(`name: lab\n${NODES}`, 't').login, undefined);
  assert.deepEqual(parseSpec(`name: lab\n${NODES}\nlogin: {}`, 't').login, { hostname: 'login', jupyter: false });
  assert.deepEqual(parseSpec(`name: lab\n${NODES}\nusers: [{name: alice}]\nlogin: {hostname: desk, jupyter: true}`, 't').login, { hostname: 'desk', jupyter: true });
  hasProblem(invalid(`name: lab\n${NODES}\nlogin: {hostname: c2}`), 'login.hostname', '"c2" is also a worker node of group "c"');
  hasProblem(invalid(`name: lab\n${NODES}\nhead: {hostname: main}\nlogin: {hostname: main}`), 'login.hostname', "the head's hostname too");
  hasProblem(invalid(`name: lab\n${NODES}\nlogin: {jupyter: true}`), 'users', 'login.jupyter is true', 'add users');
  assert.equal(parseSpec(`name: lab\n${NODES}\nprovider: {type: swarm, hosts: [{name: h1, endpoint: "unix:///a.sock"}]}\nlogin: {}`, 't').login?.hostname, 'login');
  assert.equal(parseSpec(`name: lab\n${NODES}\nprovider: docker\nlogin: {}`, 't').login?.hostname, 'login');
  const bad = invalid(`name: lab\n${NODES}\nlogin: {hostname: Login, jupyter: yes please, port: 80}`);
  hasProblem(bad, 'login.hostname');
  hasProblem(bad, 'login.jupyter', 'true or false');
  hasProblem(bad, 'login.port', 'unknown key');
});

test('provider swarm: bad hosts are refused, each problem at its field with the fix', () => {
  hasProblem(invalid(`name: lab\n${NODES}\nprovider: swarm`), 'provider', 'needs the Docker engines of its hosts', 'hosts: [{name: h1');
  const err = invalid(`name: lab\nnodes: [{name: c, count: 3}]\nprovider: {type: swarm, head: h9, hosts: [{name: h1, endpoint: "http://x", workers: 1}, {name: h1, endpoint: "unix:///a.sock", workers: 1}]}`);
  hasProblem(err, 'provider.hosts[0].endpoint', 'unix:///run/docker.sock, tcp://');
  hasProblem(err, 'provider.hosts[1].name', 'already given at provider.hosts[0]');
  hasProblem(err, 'provider.head', '"h9" is not a host');
  hasProblem(err, 'provider.hosts', 'at most 2 workers', 'but the spec has 3');
  hasProblem(invalid(`name: lab\n${NODES}\nprovider: {type: docker, head: h1}`), 'provider.head', 'only for provider type swarm');
  hasProblem(invalid(`name: lab\n${NODES}\nprovider: {type: docker, registry: "10.0.0.1:5000"}`), 'provider.registry', 'only for provider type swarm');
  hasProblem(invalid(`name: lab\n${NODES}\nprovider: {type: swarm, registry: "http://10.0.0.1:5000", hosts: [{name: h1, endpoint: "unix:///a.sock"}]}`), 'provider.registry', 'without a scheme, e.g. 10.0.0.1:5000');
  const cfg = parseSpec(`name: lab\n${NODES}\nprovider: {type: swarm, registry: "10.0.0.1:5000/hpc", hosts: [{name: h1, endpoint: "unix:///a.sock"}]}`, 't');
  assert.ok(cfg.provider.type === 'swarm' && cfg.provider.registry === '10.0.0.1:5000/hpc');
});

test('provider swarm, hosts that do not answer at up: their nodes are left out while every group keeps its minNodes, else a clear error', async () => {
  const { withoutHosts } = await import('../cluster/placement.js');
  const hosts = '[{name: h1, endpoint: "unix:///a.sock"}, {name: h2, endpoint: "unix:///b.sock"}, {name: h3, endpoint: "unix:///c.sock"}]';
  const spec = (groups: string, extra = '') => parseSpec(`name: lab\nnodes: ${groups}\nprovider: {type: swarm, hosts: ${hosts}}\n${extra}`, 't');
  const lost = [{ host: 'h3', detail: 'its engine at unix:///c.sock did not answer within 10 s' }];
  // c3 and c6 would run on h3: left out; the rest go over h1 and h2, and the partition loses them too.
  const { config, left } = withoutHosts(spec('[{name: c, count: 6, minNodes: 4}]'), lost);
  assert.deepEqual(left, ['c3', 'c6']);
  assert.deepEqual(config.nodes.map((n) => n.name), ['c1', 'c2', 'c4', 'c5']);
  assert.deepEqual(config.partitions[0]!.nodes, ['c1', 'c2', 'c4', 'c5']);
  assert.ok(config.provider.type === 'swarm' && config.provider.hosts.map((h) => h.name).join() === 'h1,h2');
  // Without minNodes every node is needed; with too high a minimum the error says which group.
  assert.throws(() => withoutHosts(spec('[{name: c, count: 6}]'), lost), (e: SlurmkitError) => {
    assert.equal(e.code, 'PRECONDITION');
    assert.match(e.message, /^host h3: its engine at unix:\/\/\/c\.sock did not answer within 10 s; without it, group c would have 4 of its 6 nodes, fewer than all \(no nodes\[0\]\.minNodes\)$/);
    assert.match(e.hint ?? '', /nodes\[\]\.minNodes/);
    return true;
  });
  assert.throws(() => withoutHosts(spec('[{name: c, count: 6, minNodes: 5}]'), lost), /fewer than nodes\[0\]\.minNodes \(5\)/);
  // A partition left with no node is refused, and so is a lost head host.
  assert.throws(() => withoutHosts(spec('[{name: c, count: 6, minNodes: 0}]', 'partitions: [{name: p, nodes: c3}, {name: q}]'), lost), /partition p would have no node/);
  assert.throws(() => withoutHosts(spec('[{name: c, count: 2, minNodes: 0}]'), [{ host: 'h1', detail: 'down' }]), /host h1, where the head runs, does not answer/);
});

test('minNodes: at most the count, and only on provider swarm', () => {
  hasProblem(invalid(`name: lab\nnodes: [{name: c, count: 2, minNodes: 3}]\nprovider: {type: swarm, hosts: [{name: h1, endpoint: "unix:///a.sock"}]}`), 'nodes[0].minNodes', 'more than the group\'s count (2)', 'at most minNodes: 2');
  hasProblem(invalid(`name: lab\nnodes: [{name: c, count: 2, minNodes: 1}]\nprovider: docker`), 'nodes[0].minNodes', 'only provider swarm', 'remove minNodes');
});
