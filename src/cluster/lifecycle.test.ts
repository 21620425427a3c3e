/**
 * Lifecycle on real Slurm: real slurmctld, slurmd and munged in namespaces on this machine.
 * Needs root and the Debian packages the README installs.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { rm, writeFile } from 'node:fs/promises';
import { applyOverrides, parseYaml, resolveSpec } from '../spec/load.js';
import { templateText } from '../spec/templates.js';
import { down, gc, start, stop, up } from './lifecycle.js';
import { ClusterPaths } from './paths.js';
import { readState, type ClusterState } from './state.js';
import { listClusters, listNodes } from './inspect.js';
import { scanLabeledProcesses } from '../providers/local/procscan.js';
import { cleanupHome, hostSnapshot, leftoversOf, sh, shOk, useTempHome, waitForJob, type HostSnapshot } from '../testing/harness.js';
import { sleep } from '../util/run.js';

async function upTemplate(template: string, name: string, slurm: Record<string, unknown> = {}): Promise<ClusterState> {
  const text = await templateText(template);
  const raw = applyOverrides(parseYaml(text, template), { name }) as Record<string, Record<string, unknown>>;
  raw.slurm = { ...raw.slurm, ...slurm };
  return up({ config: resolveSpec(raw, `template ${template}`), specText: text, readyTimeoutMs: 60_000 });
}

describe('local cluster lifecycle', () => {
  let home: string;
  let before_: HostSnapshot;
  let lab: ClusterState;

  before(async () => {
    home = await useTempHome();
    before_ = await hostSnapshot();
    // A short SlurmdTimeout so that a killed slurmd is noticed within seconds.
    lab = await upTemplate('lab', 'tlab', { slurmdTimeoutSeconds: 5 });
  });

  after(async () => {
    await cleanupHome(home);
  });

  test('up of lab: every worker idle, 8 distinct hostnames from srun -N8', async () => {
    const nodes = await listNodes('tlab');
    assert.equal(nodes.filter((n) => n.role === 'worker' && n.slurmState === 'idle').length, 8);
    const out = await shOk(lab, 'srun -N8 hostname');
    const hosts = out.trim().split('\n');
    assert.equal(hosts.length, 8);
    assert.equal(new Set(hosts).size, 8, `hostnames not distinct: ${hosts.join(' ')}`);
  });

  test('each node has its own hostname, address, /etc/hosts and private /tmp', async () => {
    assert.equal((await shOk(lab, 'hostname', 'c3')).trim(), 'c3');
    const addr = await shOk(lab, 'ip -4 -o addr show eth0', 'c3');
    assert.match(addr, new RegExp(lab.nodes.find((n) => n.name === 'c3')!.address.replace(/\./g, '\\.')));
    assert.match(await shOk(lab, 'cat /etc/hosts', 'c5'), /\bc8\b/);
    await shOk(lab, 'echo mine > /tmp/slurmkit-private-check', 'c1');
    assert.equal((await sh(lab, 'test -e /tmp/slurmkit-private-check', 'c2')).exitCode, 1);
    assert.equal(existsSync('/tmp/slurmkit-private-check'), false);
  });

  test('nodes know each other without ARP: the head every address of the subnet, a worker the head, permanently', async () => {
    const head = lab.nodes.find((n) => n.role === 'head')!;
    const c3 = lab.nodes.find((n) => n.name === 'c3')!;
    // The MAC the worker really has is the one the head holds for it.
    // Read through ip, not /sys: a node's /sys is the host's, which shows the host's eth0.
    const macOf = async (node: string) => /link\/ether (\S+)/.exec(await shOk(lab, 'ip -o link show eth0', node))?.[1];
    const mac = await macOf('c3');
    assert.match(await shOk(lab, `ip neigh show ${c3.address} dev eth0`), new RegExp(`lladdr ${mac} PERMANENT`));
    const headMac = await macOf('head');
    assert.match(await shOk(lab, `ip neigh show ${head.address} dev eth0`, 'c3'), new RegExp(`lladdr ${headMac} PERMANENT`));
    // An address no node has yet (where add-node would put one) is known too.
    const permanent = (await shOk(lab, 'ip neigh show nud permanent dev eth0')).trim().split('\n');
    assert.ok(permanent.length >= 250, `the head knows the whole /24: ${permanent.length} entries`);
  });

  test('an sbatch array of 200 tasks completes', async () => {
    const dir = `${home}/array`;
    const id = (await shOk(lab, `mkdir -p ${dir} && sbatch --parsable --array=1-200 -o /dev/null --wrap 'touch ${dir}/t-$SLURM_ARRAY_TASK_ID'`)).trim();
    await waitForJob(lab, id, 180_000);
    const count = (await shOk(lab, `ls ${dir} | wc -l`)).trim();
    assert.equal(count, '200');
  });

  test('kill -9 of one slurmd marks that node down, and start brings it back', async () => {
    const slurmd = (await scanLabeledProcesses()).find((p) => p.clusterId === lab.id && p.node === 'c4' && p.comm === 'slurmd');
    assert.ok(slurmd, 'slurmd of c4 is running');
    process.kill(slurmd.pid, 'SIGKILL');
    const deadline = Date.now() + 60_000;
    let state = '';
    while (Date.now() < deadline) {
      state = (await shOk(lab, 'sinfo -h -n c4 -o %T')).trim();
      if (state.startsWith('down')) break;
      await sleep(500);
    }
    assert.match(state, /^down/);
    await start('tlab');
    assert.equal((await shOk(lab, 'sinfo -h -n c4 -o %T')).trim(), 'idle');
    assert.equal((await shOk(lab, 'srun -w c4 hostname')).trim(), 'c4');
  });

  test('stop and start keep a held job queued and job ids continue', async () => {
    const held = Number((await shOk(lab, 'sbatch --parsable -H -o /dev/null --wrap true')).trim());
    await stop('tlab');
    assert.equal((await readState('tlab'))!.phase, 'stopped');
    assert.deepEqual(
      (await scanLabeledProcesses()).filter((p) => p.clusterId === lab.id),
      [],
      'no process of the cluster runs while it is stopped',
    );
    assert.deepEqual(await leftoversOf(lab.id), []);
    await start('tlab');
    const q = (await shOk(lab, `squeue -h -j ${held} -o '%T %r'`)).trim();
    assert.match(q, /^PENDING (JobHeldUser|JobHeldAdmin)/);
    const next = Number((await shOk(lab, 'sbatch --parsable -o /dev/null --wrap true')).trim());
    assert.ok(next > held, `job id ${next} continues after ${held}`);
    await shOk(lab, `scancel ${held}`);
  });

  test('two clusters run side by side without colliding', async () => {
    const other = await upTemplate('minimal', 'tmin');
    try {
      assert.notEqual(other.network.subnet, lab.network.subnet);
      assert.notEqual(other.id, lab.id);
      assert.equal((await shOk(other, 'srun -N2 hostname | sort')).trim(), 'c1\nc2');
      assert.equal((await shOk(lab, 'srun -N8 hostname | sort | head -1')).trim(), 'c1');
      assert.equal((await shOk(other, 'sinfo -h -o %D')).trim(), '2');
    } finally {
      await down('tmin');
    }
    assert.deepEqual(await leftoversOf(other.id), []);
  });

  test('a cluster whose controller cannot start is removed again, and the error says why', async () => {
    const err = await upTemplate('minimal', 'tbroken', { extraConf: { SelectType: 'select/bogus' } }).then(
      () => assert.fail('up should have failed'),
      (e: unknown) => e as Error & { code?: string },
    );
    assert.equal(err.code, 'COMMAND_FAILED');
    assert.match(err.message, /select\/bogus/);
    assert.equal(await readState('tbroken'), undefined);
    assert.equal(existsSync(ClusterPaths.of('tbroken').root), false);
    const labeled = (await scanLabeledProcesses()).filter((p) => p.clusterName === 'tbroken');
    assert.deepEqual(labeled, []);
  });

  test('gc removes what a cluster whose folder vanished left running', async () => {
    const orphan = await upTemplate('minimal', 'torphan');
    await rm(ClusterPaths.of('torphan').root, { recursive: true, force: true });
    assert.notDeepEqual(await leftoversOf(orphan.id), []);
    const report = await gc();
    assert.deepEqual(report.failed, []);
    assert.ok(report.removed.some((r) => r.startsWith('bridge')), `removed: ${report.removed.join('; ')}`);
    assert.deepEqual(await leftoversOf(orphan.id), []);
    // The running lab cluster is not touched.
    assert.equal((await shOk(lab, 'sinfo -h -o %D')).trim(), '8');
  });

  test('a cluster whose state.json is truncated is listed as broken, gc leaves it running, down --force removes it', async () => {
    const c = await upTemplate('minimal', 'ttrunc');
    const job = (await shOk(c, 'sbatch --parsable -o /dev/null --wrap "sleep 60"')).trim();
    await writeFile(ClusterPaths.of('ttrunc').state, '');
    const row = (await listClusters()).find((v) => v.name === 'ttrunc');
    assert.equal(row?.phase, 'broken');
    assert.match(row?.error ?? '', /state\.json.*empty/);
    assert.match(row?.fix ?? '', /slurmkit down ttrunc --force/);
    const report = await gc();
    assert.deepEqual(report.found.filter((f) => f.includes(c.id)), [], `gc touched the broken cluster: ${report.found.join('; ')}`);
    assert.notDeepEqual(await leftoversOf(c.id), []);
    assert.match((await shOk(c, `squeue -h -j ${job} -o %T`)).trim(), /RUNNING|PENDING|CONFIGURING/, 'its job still runs');
    await assert.rejects(down('ttrunc'), (e: Error & { code?: string }) => e.code === 'CONFLICT');
    assert.notDeepEqual(await leftoversOf(c.id), [], 'down without --force changes nothing');
    assert.equal((await down('ttrunc', { force: true })).existed, true);
    assert.deepEqual(await leftoversOf(c.id), []);
    assert.equal(existsSync(ClusterPaths.of('ttrunc').root), false);
  });

  test('down twice leaves nothing behind and the host unchanged', async () => {
    const first = await down('tlab');
    assert.equal(first.existed, true);
    const second = await down('tlab');
    assert.equal(second.existed, false);
    assert.deepEqual(await leftoversOf(lab.id), []);
    assert.equal(existsSync(ClusterPaths.of('tlab').root), false);
    const now = await hostSnapshot();
    // Other clusters (of other homes) may come and go meanwhile; ours were checked by label above.
    const notCluster = (l: string) => !/^sk[0-9a-f]{6}(br|n\d+)$/.test(l);
    assert.deepEqual(now.links.filter(notCluster), before_.links.filter(notCluster), 'network links');
    assert.equal(now.mounts, before_.mounts, 'mounts');
    assert.equal(now.netns, before_.netns, 'named network namespaces');
    const notClusterRule = (chain: string) => chain.split('\n').filter((l) => !l.includes('--comment "slurmkit:') && !l.includes('--comment slurmkit:')).join('\n');
    assert.equal(notClusterRule(now.forward), notClusterRule(before_.forward), 'iptables FORWARD chain');
    assert.deepEqual(now.files, before_.files, 'host files /etc/hosts, /etc/passwd, /etc/munge, /etc/slurm');
  });
});
