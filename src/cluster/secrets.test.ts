/**
 * Every secret of a cluster (munge key, database password, JWT key, blob account) is readable
 * only in the head, which runs the services that use them: root in a worker finds none of them,
 * at their host paths or anywhere else it can see, and sees no other cluster's folder.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { resolveSpec } from '../spec/load.js';
import { up } from './lifecycle.js';
import { ClusterPaths, HEAD_SECRETS, slurmkitHome } from './paths.js';
import { sitePaths } from './site.js';
import { BlobPaths } from '../storage/paths.js';
import { ensureBlobStorage } from '../storage/blob.js';
import { cleanupHome, sh, shOk, useTempHome } from '../testing/harness.js';
import type { ClusterState } from './state.js';

describe('secrets stay in the head', () => {
  let home: string;
  let c: ClusterState;
  let secretFiles: string[];

  before(async () => {
    home = await useTempHome();
    const raw = { name: 'tsecret', nodes: [{ name: 'c', count: 2 }], accounting: true, rest: true, users: [{ name: 'alice' }] };
    c = await up({ config: resolveSpec(raw, 'test'), specText: JSON.stringify(raw) });
    await ensureBlobStorage('tsecret'); // makes the blob account and the connection string
    const paths = ClusterPaths.of('tsecret');
    const blob = BlobPaths.of('tsecret');
    secretFiles = [paths.mungeKey, join(sitePaths(paths).dbSecrets, 'password'), sitePaths(paths).slurmdbdConfSecret, paths.jwtKey, blob.account, blob.connectionString];
  });
  after(async () => {
    await cleanupHome(home);
  });

  test('every secret exists on the host, owner-only', async () => {
    for (const f of secretFiles) {
      const mode = (await stat(f)).mode & 0o777;
      assert.ok((mode & 0o077) === 0, `${f} has mode ${mode.toString(8)}`);
    }
  });

  test('root in a worker finds no secret at its host path, in /etc/munge, or by content anywhere it can read', async () => {
    for (const f of secretFiles) {
      const r = await sh(c, `cat ${f}`, 'c1');
      assert.notEqual(r.exitCode, 0, `c1 can read ${f}`);
      assert.match(r.stderr, /No such file/, `${f} is hidden in c1, not merely unreadable`);
    }
    assert.equal((await shOk(c, 'ls -A /etc/munge', 'c1')).trim(), '', 'a worker has no munge key at all');
    assert.equal((await sh(c, `ls ${HEAD_SECRETS}`, 'c1')).exitCode, 2, 'no head secrets folder in a worker');
    // Look for each secret's bytes in every file root in c1 can see where slurmkit keeps anything.
    const secrets = await Promise.all([join(sitePaths(ClusterPaths.of('tsecret')).dbSecrets, 'password'), BlobPaths.of('tsecret').account].map(async (f) => (await readFile(f, 'utf8')).trim()));
    for (const secret of secrets) {
      const r = await sh(c, `grep -rlF -- ${JSON.stringify(secret.slice(-24))} ${slurmkitHome()} /etc /run /var/lib/slurm /var/log/slurm 2>/dev/null`, 'c1');
      assert.equal(r.stdout.trim(), '', `a secret is readable in c1 in: ${r.stdout}`);
      assert.equal(r.exitCode, 1, 'grep searched and found nothing');
    }
  });

  test('the head has the secrets its services use, and they work', async () => {
    assert.match(await shOk(c, `ls ${HEAD_SECRETS}`), /munge/);
    assert.match(await shOk(c, 'cat /etc/slurm/slurmdbd.conf'), /StoragePass=/);
    assert.match(await shOk(c, 'sacctmgr -n -P list cluster format=cluster'), /tsecret/);
    assert.match(await shOk(c, 'scontrol token lifespan=60'), /SLURM_JWT=/);
    assert.equal((await shOk(c, 'srun -N2 hostname | sort')).trim(), 'c1\nc2', 'workers authenticate through the head munged');
  });

  test("a worker sees its own cluster's folder but no other cluster's", async () => {
    const raw = { name: 'tother', nodes: [{ name: 'c', count: 1 }], storage: { blob: 'none' } };
    await up({ config: resolveSpec(raw, 'test'), specText: JSON.stringify(raw) });
    const clusters = join(slurmkitHome(), 'clusters');
    assert.equal((await shOk(c, `ls ${clusters}`, 'c1')).trim(), 'tsecret');
    assert.equal((await shOk(c, `ls ${clusters}`)).trim(), 'tsecret', 'nor does the head');
    assert.match(await shOk(c, `cat ${ClusterPaths.of('tsecret').spec}`, 'c1'), /tsecret/);
    assert.notEqual((await sh(c, `cat ${ClusterPaths.of('tother').mungeKey}`, 'c1')).exitCode, 0);
  });
});
