/** doctor checks everything any template or spec feature needs, so `up` never fails where doctor passed. */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { requirementChecks, requirementsOf, templateSites } from './doctor.js';
import { listTemplates, loadTemplate } from '../spec/templates.js';
import { nodeSpecFor, sampleNodes } from './layout.js';
import { ClusterPaths } from './paths.js';
import { siteOf } from './site.js';
import { hostPathsNeeded } from '../providers/local/init-script.js';

describe('doctor', () => {
  test('checks the programs and mount points of accounting and REST (slurmdbd, mariadbd, slurmrestd, /var/lib/mysql, ...)', async () => {
    const req = requirementsOf(await templateSites());
    for (const p of ['slurmctld', 'slurmd', 'munged', 'slurmdbd', 'mariadbd', 'mariadb-install-db', 'mariadb', 'sacctmgr', 'slurmrestd', 'flock', 'nsenter']) {
      assert.ok(req.programs.has(p), `doctor does not check program ${p}`);
    }
    for (const dir of ['/var/lib/mysql', '/etc/mysql', '/shared', '/etc/slurm', '/var/lib/slurm', '/etc/munge']) {
      assert.ok(req.mountPoints.has(dir), `doctor does not check mount point ${dir}`);
    }
  });

  test('every host path that the nodes of every template mount is checked', async () => {
    const req = requirementsOf(await templateSites());
    const home = ClusterPaths.of('check').root.replace(/\/clusters\/check$/, '');
    for (const t of await listTemplates()) {
      const cfg = await loadTemplate(t.name);
      const paths = ClusterPaths.of(cfg.name);
      for (const node of sampleNodes()) {
        const needed = hostPathsNeeded(nodeSpecFor(node, paths, cfg.name, siteOf(cfg)).mounts).filter((p) => !p.startsWith(`${home}/`));
        for (const p of needed) assert.ok(req.mountPoints.has(p), `template ${t.name}: ${node.role} mounts ${p}, which doctor does not check`);
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
    assert.equal(req.mountPoints.has('/var/lib/mysql'), false);
    assert.ok(req.programs.has('slurmctld'));
  });
});
