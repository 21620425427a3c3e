import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { listTemplates, loadTemplate } from '../spec/templates.js';
import { parseSpec } from '../spec/load.js';
import type { ClusterConfig, NetworkPlan } from '../spec/types.js';
import { renderCgroupConf, renderHosts, renderSlurmConf } from './render.js';

// dist/slurm/render.test.js -> test/golden/ in the repository.
const GOLDEN = new URL('../../test/golden/', import.meta.url);
const UPDATE = process.env.UPDATE_GOLDEN === '1';

/** A fixed plan so golden files do not depend on which subnet is free: gateway .1, head .2, workers from .11. */
function fixedPlan(cfg: ClusterConfig): NetworkPlan {
  const addresses: Record<string, string> = { [cfg.head.hostname]: '10.213.0.2' };
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

for (const { name } of await listTemplates()) {
  test(`template ${name} renders its golden slurm.conf, cgroup.conf and hosts`, async () => {
    const cfg = await loadTemplate(name);
    const net = fixedPlan(cfg);
    await matchesGolden(`${name}.slurm.conf`, renderSlurmConf(cfg, net));
    await matchesGolden(`${name}.cgroup.conf`, renderCgroupConf(cfg));
    await matchesGolden(`${name}.hosts`, renderHosts(cfg, net));
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

test('partition lines: compressed hostlist, first partition default, extras sorted and overriding', () => {
  assert.match(conf, /^PartitionName=main Nodes=c\[1-2\],gpu1 Default=YES MaxTime=UNLIMITED AllowGroups=staff Priority=5 State=DOWN$/m);
  assert.match(conf, /^PartitionName=gpu Nodes=gpu1 Default=NO MaxTime=30 State=UP$/m);
});

test('a host missing from the network plan is an internal error, not a broken file', () => {
  const net = fixedPlan(custom);
  delete net.addresses['gpu1'];
  assert.throws(() => renderSlurmConf(custom, net), { code: 'INTERNAL' });
  assert.throws(() => renderHosts(custom, net), { code: 'INTERNAL' });
});
