import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { listTemplates, loadTemplate } from '../spec/templates.js';
import { parseSpec } from '../spec/load.js';
import type { ClusterConfig, NetworkPlan } from '../spec/types.js';
import { SlurmkitError } from '../util/errors.js';
import { conflictsWithHost, renderGroup, renderPasswd } from './accounts.js';
import { renderCgroupConf, renderHosts, renderMpiConf, renderSlurmConf, renderSlurmdbdConf } from './render.js';

// dist/slurm/render.test.js -> test/golden/ in the repository.
const GOLDEN = new URL('../../test/golden/', import.meta.url);
const UPDATE = process.env.UPDATE_GOLDEN === '1';

/** A fixed plan so golden files do not depend on which subnet is free: gateway .1, head .2, login .10, workers from .11. */
function fixedPlan(cfg: ClusterConfig): NetworkPlan {
  const addresses: Record<string, string> = { [cfg.head.hostname]: '10.213.0.2', ...(cfg.login ? { [cfg.login.hostname]: '10.213.0.10' } : {}) };
  cfg.nodes.forEach((n, i) => (addresses[n.name] = `10.213.0.${11 + i}`));
  return { subnet: '10.213.0.0/24', prefixLength: 24, gateway: '10.213.0.1', addresses };
}

async function matchesGolden(file: string, actual: string): Promise<void> {
  const url = new URL(file, GOLDEN);
  if (UPDATE) {
    await mkdir(GOLDEN, { recursive: true });
    await writeFile(url, actual);
    return;
  }
  const expected = await readFile(url, 'utf8').catch(() => {
    throw new Error(`golden file test/golden/${file} is missing; run with UPDATE_GOLDEN=1 to write it`);
  });
  assert.equal(actual, expected, `test/golden/${file} differs; if the change is intended, re-run with UPDATE_GOLDEN=1`);
}

/** A Debian host in miniature: system accounts, a package account (slurm), nobody, and two people. */
const HOST_PASSWD = `root:x:0:0:root:/root:/bin/bash
daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin
_apt:x:42:65534::/nonexistent:/usr/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin
pat:x:1000:1000:Pat,,,:/home/pat:/bin/bash
postgres:x:101:104:PostgreSQL administrator,,,:/var/lib/postgresql:/bin/bash
slurm:x:64030:64030::/nonexistent:/usr/sbin/nologin
geoclue:x:120:127::/var/lib/geoclue:/usr/sbin/nologin
alice:x:1001:1001:Host Alice:/home/alice:/bin/zsh
`;
const HOST_GROUP = `root:x:0:
sudo:x:27:pat,alice
ssl-cert:x:103:postgres
users:x:100:pat
nogroup:x:65534:
pat:x:1000:
slurm:x:64030:
lpadmin:x:121:
alice:x:1001:
`;

for (const { name } of await listTemplates()) {
  test(`template ${name} renders its golden slurm.conf, cgroup.conf, hosts, passwd and group`, async () => {
    const cfg = await loadTemplate(name);
    const net = fixedPlan(cfg);
    await matchesGolden(`${name}.slurm.conf`, renderSlurmConf(cfg, net));
    await matchesGolden(`${name}.cgroup.conf`, renderCgroupConf(cfg));
    await matchesGolden(`${name}.mpi.conf`, renderMpiConf(cfg));
    await matchesGolden(`${name}.hosts`, renderHosts(cfg, net));
    await matchesGolden(`${name}.passwd`, renderPasswd(HOST_PASSWD, cfg.users));
    await matchesGolden(`${name}.group`, renderGroup(HOST_GROUP, cfg.unixGroups, HOST_PASSWD));
    if (cfg.accounting) await matchesGolden(`${name}.slurmdbd.conf`, renderSlurmdbdConf(cfg, { storagePass: 'GOLDEN-PLACEHOLDER' }));
  });
}

test('rendering is deterministic', async () => {
  const cfg = await loadTemplate('partitions');
  assert.equal(renderSlurmConf(cfg, fixedPlan(cfg)), renderSlurmConf(structuredClone(cfg), fixedPlan(cfg)));
});

const custom = parseSpec(
  `
name: t
nodes:
  - {name: c, count: 2, features: [ssd, bigmem, ssd]}
  - {name: gpu, count: 1, cpus: 4, memoryMiB: 4096}
partitions:
  - {name: main, extra: {State: DOWN, Priority: 5, AllowGroups: staff}}
  - {name: gpu, nodes: {group: gpu}, default: false, maxTime: 30}
slurm:
  extraConf: {SchedulerType: sched/builtin, SlurmctldDebug: debug, DebugFlags: Steps, EnforcePartLimits: true}
`,
  'inline',
);
const conf = renderSlurmConf(custom, fixedPlan(custom));

test('extraConf replaces our key of the same name instead of repeating it, and is sorted', () => {
  assert.equal(conf.match(/^SchedulerType=/gm)?.length, 1);
  assert.match(conf, /^SchedulerType=sched\/builtin$/m);
  const extras = conf.split('\n').filter((l) => /^(SchedulerType|SlurmctldDebug|DebugFlags|EnforcePartLimits)=/.test(l));
  assert.deepEqual(extras, ['DebugFlags=Steps', 'EnforcePartLimits=YES', 'SchedulerType=sched/builtin', 'SlurmctldDebug=debug']);
});

test('node lines carry address, size and sorted unique features', () => {
  assert.match(conf, /^NodeName=c1 NodeAddr=10\.213\.0\.11 CPUs=1 RealMemory=1024 Features=bigmem,ssd State=UNKNOWN$/m);
  assert.match(conf, /^NodeName=gpu1 NodeAddr=10\.213\.0\.13 CPUs=4 RealMemory=4096 State=UNKNOWN$/m);
  assert.equal(conf.match(/^NodeName=/gm)?.length, 3);
});

test('room for nodes added later (MaxNodeCount) only with select/cons_tres, which Slurm requires for it', () => {
  assert.match(conf, /^MaxNodeCount=244$/m);
  const linear = parseSpec('name: x\nnodes: [{name: c, count: 2}]\nslurm: {extraConf: {SelectType: select/linear}}\n', 'inline');
  assert.doesNotMatch(renderSlurmConf(linear, fixedPlan(linear)), /MaxNodeCount/);
});

test('partition lines: compressed hostlist, first partition default, extras sorted and overriding', () => {
  assert.match(conf, /^PartitionName=main Nodes=c\[1-2\],gpu1 Default=YES MaxTime=UNLIMITED AllowGroups=staff Priority=5 State=DOWN$/m);
  assert.match(conf, /^PartitionName=gpu Nodes=gpu1 Default=NO MaxTime=30 State=UP$/m);
});

test('an exclusive partition gives whole nodes to each job (OverSubscribe=EXCLUSIVE)', () => {
  const cfg = parseSpec('name: x\nnodes: [{name: c, count: 2, cpus: 2}]\npartitions: [{name: exam, exclusive: true}, {name: all}]\n', 'inline');
  const text = renderSlurmConf(cfg, fixedPlan(cfg));
  assert.match(text, /^PartitionName=exam Nodes=c\[1-2\] Default=YES MaxTime=UNLIMITED OverSubscribe=EXCLUSIVE State=UP$/m);
  assert.match(text, /^PartitionName=all Nodes=c\[1-2\] Default=NO MaxTime=UNLIMITED State=UP$/m);
});

test('sandboxed partitions: an Epilog that drains a node it cannot clean; each sandboxed node listed with its sandbox', async () => {
  const { renderSandboxConf, renderPlugstack } = await import('../sandbox/sandbox.js');
  const cfg = parseSpec('name: x\nnodes: [{name: c, count: 2}, {name: d, count: 1}]\npartitions: [{name: exam, nodes: {group: c}, sandbox: {pids: 64, writable: [/a, /b]}}, {name: open, nodes: {group: d}, sandbox: {perf: false}}]\n', 'inline');
  assert.match(renderSlurmConf(cfg, fixedPlan(cfg)), /^Epilog=\/etc\/slurm\/slurmkit-sandbox-epilog$/m);
  assert.doesNotMatch(renderSlurmConf(custom, fixedPlan(custom)), /Epilog/);
  assert.deepEqual(renderSandboxConf(cfg).split('\n').slice(1), ['c1 network=none pids=64 writable=/a:/b', 'c2 network=none pids=64 writable=/a:/b', 'd1 network=none perf=no', '']);
  assert.match(renderPlugstack('/etc/slurm/p.so', 'slurmkit-ab-cd'), /^required \/etc\/slurm\/p\.so conf=\/etc\/slurm\/sandbox\.conf group=slurmkit-ab-cd$/m);
});

test('a host missing from the network plan is an internal error, not a broken file', () => {
  const net = fixedPlan(custom);
  delete net.addresses['gpu1'];
  assert.throws(() => renderSlurmConf(custom, net), { code: 'INTERNAL' });
  assert.throws(() => renderHosts(custom, net), { code: 'INTERNAL' });
});

test('accounting adds the slurmdbd settings to slurm.conf; PrivateData is always there', async () => {
  const lab = await loadTemplate('lab');
  const withDbd = renderSlurmConf(lab, fixedPlan(lab));
  for (const l of ['AccountingStorageType=accounting_storage/slurmdbd', 'AccountingStorageHost=head', 'AccountingStoragePort=6819', 'AccountingStorageEnforce=associations', 'JobCompType=jobcomp/none', 'JobAcctGatherType=jobacct_gather/none']) {
    assert.ok(withDbd.split('\n').includes(l), `lab slurm.conf lacks ${l}`);
  }
  const minimal = await loadTemplate('minimal');
  const without = renderSlurmConf(minimal, fixedPlan(minimal));
  assert.doesNotMatch(without, /^(AccountingStorage|JobComp)/m);
  for (const text of [withDbd, without]) assert.match(text, /^PrivateData=jobs,usage,users,accounts$/m);
});

test('slurmdbd.conf follows the head hostname and refuses a password it cannot write safely', () => {
  const cfg = parseSpec('name: t\naccounting: true\nhead: {hostname: boss}\nnodes: [{name: c, count: 1}]', 'inline');
  const dbd = renderSlurmdbdConf(cfg, { storagePass: 'abcdefghijklmnop-_+/=' });
  assert.match(dbd, /^DbdHost=boss$/m);
  assert.match(dbd, /^StoragePass=abcdefghijklmnop-_\+\/=$/m);
  for (const storagePass of ['', 'short', 'has a space in it ok?', 'with#hash-xxxxxxxxxx', "quote'xxxxxxxxxxxxxxx"]) {
    assert.throws(
      () => renderSlurmdbdConf(cfg, { storagePass }),
      (err: SlurmkitError) => err.code === 'INTERNAL' && (storagePass === '' || !err.message.includes(storagePass)),
    );
  }
});

const people = parseSpec(
  `
name: t
nodes: [{name: c, count: 1}]
users:
  - {name: zoe, groups: [students, lab]}
  - {name: pat, uid: 2001, groups: [students]}
  - {name: alice, gid: 2001}
`,
  'inline',
);

test('passwd keeps system accounts (below 1000 and from 60000), drops host people and appends cluster users by uid', () => {
  const passwd = renderPasswd(HOST_PASSWD, people.users);
  assert.equal(
    passwd,
    [
      'root:x:0:0:root:/root:/bin/bash',
      'daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin',
      '_apt:x:42:65534::/nonexistent:/usr/sbin/nologin',
      'nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin',
      'postgres:x:101:104:PostgreSQL administrator,,,:/var/lib/postgresql:/bin/bash',
      'slurm:x:64030:64030::/nonexistent:/usr/sbin/nologin',
      'geoclue:x:120:127::/var/lib/geoclue:/usr/sbin/nologin',
      'pat:x:2001:2001::/home/pat:/bin/bash',
      'zoe:x:2002:2002::/home/zoe:/bin/bash',
      'alice:x:2003:2001::/home/alice:/bin/bash',
      '',
    ].join('\n'),
  );
  assert.equal(renderPasswd('# comment\n+::::::\nbroken line\nroot:x:0:0:root:/root:/bin/bash', []), 'root:x:0:0:root:/root:/bin/bash\n');
});

test('group keeps system groups with only system members, and appends cluster groups by gid', () => {
  assert.deepEqual(people.unixGroups, [
    { name: 'pat', gid: 2001, members: [] },
    { name: 'zoe', gid: 2002, members: [] },
    { name: 'students', gid: 3001, members: ['pat', 'zoe'] },
    { name: 'lab', gid: 3002, members: ['zoe'] },
  ]);
  const group = renderGroup(HOST_GROUP, people.unixGroups, HOST_PASSWD);
  assert.equal(
    group,
    ['root:x:0:', 'sudo:x:27:', 'ssl-cert:x:103:postgres', 'users:x:100:', 'nogroup:x:65534:', 'slurm:x:64030:', 'lpadmin:x:121:', 'pat:x:2001:', 'zoe:x:2002:', 'students:x:3001:pat,zoe', 'lab:x:3002:zoe', ''].join('\n'),
  );
  // Without the host passwd no host member can be told apart from a person: none is kept.
  assert.match(renderGroup(HOST_GROUP, [], ''), /^ssl-cert:x:103:$/m);
});

test('conflictsWithHost names users and groups that clash with kept system entries; the renderers refuse them', () => {
  assert.deepEqual(conflictsWithHost(HOST_PASSWD, HOST_GROUP, people), []);
  const clash = parseSpec('name: t\nnodes: [{name: c, count: 1}]\nusers: [{name: ann}, {name: geoclue, groups: [lpadmin]}]', 'inline');
  const problems = conflictsWithHost(HOST_PASSWD, HOST_GROUP, clash);
  assert.equal(problems.length, 2, problems.join('\n'));
  assert.match(problems[0]!, /^users\[1\]\.name: "geoclue" is a system account on this machine \(uid 120\) — pick another name/);
  assert.match(problems[1]!, /^group lpadmin: "lpadmin" is a system group on this machine \(gid 121\) — rename it/);
  assert.throws(() => renderPasswd(HOST_PASSWD, clash.users), (err: SlurmkitError) => err.code === 'CONFLICT' && err.details.length === 1);
  assert.throws(() => renderGroup(HOST_GROUP, clash.unixGroups, HOST_PASSWD), { code: 'CONFLICT' });
  // Ids clash only when a host keeps a system entry inside the cluster's range, e.g. a hand-made file.
  const odd = conflictsWithHost('svc:x:70000:70000::/:/bin/false\n', 'svc:x:70000:\n', { users: [{ name: 'x', uid: 70000, gid: 70000, groups: [] }], unixGroups: [{ name: 'x', gid: 70000, members: [] }] });
  assert.equal(odd.length, 2);
  assert.match(odd[0]!, /uid 70000 belongs to the system account svc/);
});

test('configless: SlurmctldParameters=enable_configless only for clusters whose nodes fetch the configuration', async () => {
  const lab = await loadTemplate('lab');
  assert.match(renderSlurmConf(lab, fixedPlan(lab), { configless: true }), /^SlurmctldParameters=enable_configless$/m);
  assert.doesNotMatch(renderSlurmConf(lab, fixedPlan(lab)), /enable_configless/);
});
