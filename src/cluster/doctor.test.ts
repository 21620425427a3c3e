/** doctor checks everything any template or spec feature needs, so `up` never fails where doctor passed. */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { memoryProblem, requirementsOf, templateSites } from './doctor.js';
import { mountPointsOf, requirementChecks } from '../providers/local/preflight.js';
import { listTemplates, loadTemplate } from '../spec/templates.js';
import { nodeSpecFor, sampleNodes } from './layout.js';
import { ClusterPaths } from './paths.js';
import { siteOf } from './site.js';
import { hostPathsNeeded } from '../providers/local/init-script.js';
import { resolve } from 'node:path';
import { slurmkitHome } from './paths.js';

describe('doctor', () => {
  test('checks the programs and mount points of accounting and REST (slurmdbd, mariadbd, slurmrestd, /var/lib/mysql, ...)', async () => {
    const checked = (await requirementChecks(requirementsOf(await templateSites()), async (p) => `/usr/bin/${p}`, () => true)).map((c) => c.name);
    for (const p of ['slurmctld', 'slurmd', 'munged', 'slurmdbd', 'mariadbd', 'mariadb-install-db', 'mariadb', 'sacctmgr', 'slurmrestd', 'flock', 'nsenter']) {
      assert.ok(checked.includes(`program ${p}`), `doctor does not check program ${p}`);
    }
    for (const dir of ['/var/lib/mysql', '/etc/mysql', '/shared', '/etc/slurm', '/var/lib/slurm', '/etc/munge']) {
      assert.ok(checked.includes(`mount point ${dir}`), `doctor does not check mount point ${dir}`);
    }
  });

  test('every host path that the nodes of every template mount is checked', async () => {
    const mountPoints = mountPointsOf(requirementsOf(await templateSites()));
    const home = resolve(slurmkitHome());
    for (const t of await listTemplates()) {
      const cfg = await loadTemplate(t.name);
      const paths = ClusterPaths.of(cfg.name);
      for (const node of sampleNodes()) {
        const needed = hostPathsNeeded((await nodeSpecFor(node, paths, cfg.name, siteOf(cfg))).mounts).filter((p) => !p.startsWith(`${home}/`));
        for (const p of needed) assert.ok(mountPoints.has(p), `template ${t.name}: ${node.role} mounts ${p}, which doctor does not check`);
      }
    }
  });

  test('a missing program or mount point fails its check, names who needs it and gives the package that fixes it', async () => {
    const req = requirementsOf(await templateSites());
    const checks = await requirementChecks(req, async (p) => (p === 'slurmdbd' ? undefined : `/usr/sbin/${p}`), (dir) => dir !== '/var/lib/mysql');
    const failed = checks.filter((c) => !c.ok);
    assert.deepEqual(failed.map((c) => c.name).sort(), ['mount point /var/lib/mysql', 'program slurmdbd']);
    const dbd = failed.find((c) => c.name === 'program slurmdbd')!;
    assert.equal(dbd.fix, 'apt-get install -y slurmdbd');
    assert.match(dbd.detail, /template lab/);
    assert.equal(failed.find((c) => c.name === 'mount point /var/lib/mysql')!.fix, 'apt-get install -y mariadb-server');
  });

  test('a cluster without accounting does not need MariaDB', () => {
    const req = requirementsOf([{ name: 'cluster x', site: { accounting: false, rest: false, users: [] } }]);
    assert.equal(req.programs.has('mariadbd'), false);
    assert.equal(mountPointsOf(req).has('/var/lib/mysql'), false);
    assert.ok(req.programs.has('slurmctld'));
  });
});

test('a cluster too large for the memory of this machine is refused with the count that fits', () => {
  // 2 GiB available: 1 GiB for the head's services, 6 MiB per node.
  assert.equal(memoryProblem(100, 2 * 1024 * 1024), undefined);
  const err = memoryProblem(1001, 2 * 1024 * 1024);
  assert.ok(err);
  assert.equal(err.code, 'PRECONDITION');
  assert.match(err.message, /2048 MiB of memory available; 1001 nodes need about 7030 MiB/);
  assert.match(err.hint ?? '', /nodes\[\]\.count so the cluster has at most 170 nodes/);
});
