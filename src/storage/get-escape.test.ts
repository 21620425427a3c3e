/**
 * Hostile blob names on a real cluster's Azurite: blobs named "../escape.txt", "/abs.txt" and
 * "a/../../x" are made with @azure/storage-blob directly (slurmkit itself refuses to make them),
 * then `slurmkit blob get` downloads the container into a folder. Nothing may appear outside
 * that folder, the bad names must be reported, and `rm` must remove exactly the blob named.
 * Names with spaces and unicode must round-trip through put and get. Needs root and the
 * Debian packages the README installs.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { BlockBlobClient, BlobServiceClient, StorageSharedKeyCredential } from '@azure/storage-blob';
import { applyOverrides, parseYaml, resolveSpec } from '../spec/load.js';
import { templateText } from '../spec/templates.js';
import { down, up } from '../app/clusters.js';
import { cleanupHome } from '../testing/harness.js';
import { ensureBlobStorage } from './blob.js';
import { runCli } from '../testing/cli.js';

const NAME = 'tgetesc';
/** The last one resolves to its sibling "sib.txt" when put in a URL as it is. */
const BAD = ['../escape.txt', '/abs.txt', 'a/../../x', 'a/../sib.txt'];
const GOOD = ['good/ü b.txt', 'sib.txt'];

const cli = (home: string, args: string[]) => runCli(['blob', NAME, ...args], { home, env: { AZURE_STORAGE_CONNECTION_STRING: undefined } });

/** Every entry under `dir`, recursively, relative to it. */
async function tree(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true }).catch(() => [] as string[]);
  return entries.map(String).sort();
}

describe('blob get into a folder, against blob names that climb out of it', () => {
  let home: string;
  let svc: BlobServiceClient;
  let cred: StorageSharedKeyCredential;

  before(async () => {
    // Under the caller's SLURMKIT_HOME when set (kept out of /tmp, which nodes do not share).
    const parent = process.env.SLURMKIT_HOME ?? '/var/tmp';
    await mkdir(parent, { recursive: true });
    home = await mkdtemp(join(parent, 'get-escape-'));
    process.env.SLURMKIT_HOME = home;
    delete process.env.AZURE_STORAGE_CONNECTION_STRING;
    const text = await templateText('minimal');
    const raw = applyOverrides(parseYaml(text, 'minimal'), { name: NAME });
    await up({ config: resolveSpec(raw, 'template minimal'), specText: text, readyTimeoutMs: 60_000 });
    const cs = await (await ensureBlobStorage(NAME)).connectionString();
    svc = BlobServiceClient.fromConnectionString(cs);
    const field = (k: string) => cs.split(';').find((p) => p.startsWith(`${k}=`))?.slice(k.length + 1) ?? '';
    cred = new StorageSharedKeyCredential(field('AccountName'), field('AccountKey'));
  });

  after(async () => {
    await down(NAME, { force: true }).catch(() => undefined);
    await cleanupHome(home);
  });

  /** The SDK's own clients resolve ".." in names away, so the name goes as one segment with "/" escaped. */
  async function uploadLiteral(container: string, name: string, body: string): Promise<void> {
    await new BlockBlobClient(`${svc.getContainerClient(container).url}/${encodeURIComponent(name)}`, cred).upload(body, Buffer.byteLength(body));
  }

  async function stored(container: string): Promise<string[]> {
    const names: string[] = [];
    for await (const b of svc.getContainerClient(container).listBlobsFlat()) names.push(b.name);
    return names.sort();
  }

  test('get of the container reports every bad name, writes nothing anywhere; rm removes exactly those blobs', async () => {
    await svc.getContainerClient('escape').create();
    for (const name of BAD) await uploadLiteral('escape', name, `bad ${name}`);
    for (const name of GOOD) await uploadLiteral('escape', name, 'good');
    // The traps are really there, under their literal names.
    assert.deepEqual(await stored('escape'), [...BAD, ...GOOD].sort());

    const area = join(home, 'area');
    const out = join(area, 'one', 'out');
    await mkdir(area);
    const r = await cli(home, ['get', 'escape', '-o', out]);
    assert.equal(r.code, 4, r.stderr);
    assert.match(r.stderr, /4 blobs of container escape cannot be saved as files under .*; nothing was downloaded/);
    for (const name of BAD) assert.ok(r.stderr.includes(`  - ${JSON.stringify(name)}: `), `${name} not reported:\n${r.stderr}`);
    assert.deepEqual(await tree(area), [], 'nothing inside the area around -o, -o included');
    assert.deepEqual((await readdir(home)).filter((f) => /escape|abs|^x$/.test(f)), [], 'nothing in SLURMKIT_HOME');
    for (const p of ['/abs.txt', '/x', join(home, 'escape.txt')]) await assert.rejects(readFile(p), `${p} exists`);

    // One bad blob by name: USAGE naming it, before any request.
    const one = await cli(home, ['get', 'escape', '../escape.txt', '-o', out]);
    assert.equal(one.code, 2, one.stderr);
    assert.match(one.stderr, /invalid BLOB "\.\.\/escape\.txt": it has a "\." or "\.\." path segment/);
    assert.deepEqual(await tree(area), []);

    // The good blob is still reachable.
    const good = await cli(home, ['get', 'escape', '-o', out, '--prefix', 'good/']);
    assert.equal(good.code, 0, good.stderr);
    assert.equal(await readFile(join(out, 'good', 'ü b.txt'), 'utf8'), 'good');

    // rm reaches each bad blob by its literal name: "a/../sib.txt" must not delete "sib.txt".
    for (const name of BAD) {
      const rm = await cli(home, ['rm', 'escape', name]);
      assert.equal(rm.code, 0, `${name}: ${rm.stderr}`);
    }
    assert.deepEqual(await stored('escape'), GOOD);
    const all = await cli(home, ['get', 'escape', '-o', join(home, 'clean')]);
    assert.equal(all.code, 0, all.stderr);
    assert.deepEqual(await tree(join(home, 'clean')), ['good', 'good/ü b.txt', 'sib.txt']);
  });

  test('names with spaces and unicode round-trip through put and get; bad names are USAGE naming the argument', async () => {
    const src = join(home, 'src');
    const names = ['a b.txt', 'ünï 名前 🚀.txt', 'sub dir/..hidden', "it's $(x) `y`.txt"];
    for (const n of names) {
      await mkdir(join(src, n, '..'), { recursive: true });
      await writeFile(join(src, n), `content of ${n}`);
    }
    let r = await cli(home, ['mk', 'names']);
    assert.equal(r.code, 0, r.stderr);
    r = await cli(home, ['put', 'names', src, '--prefix', 'p q/ü', '--json']);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(await stored('names'), names.map((n) => `p q/ü/${n}`).sort());
    const out = join(home, 'names-out');
    r = await cli(home, ['get', 'names', '-o', out]);
    assert.equal(r.code, 0, r.stderr);
    for (const n of names) assert.equal(await readFile(join(out, 'p q', 'ü', n), 'utf8'), `content of ${n}`, n);

    // Nothing slurmkit uploads can be a name get would refuse.
    for (const prefix of ['../up', 'a/./b', 'a//b']) {
      r = await cli(home, ['put', 'names', join(src, 'a b.txt'), '--prefix', prefix]);
      assert.equal(r.code, 2, `${prefix}: ${r.stderr}`);
      assert.ok(r.stderr.includes(`invalid --prefix ${JSON.stringify(prefix)}`), r.stderr);
    }
    await writeFile(join(home, 'back\\slash.txt'), 'b');
    r = await cli(home, ['put', 'names', join(home, 'back\\slash.txt')]);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /which Azure Storage turns into "\/"/);
    assert.deepEqual(await stored('names'), names.map((n) => `p q/ü/${n}`).sort(), 'no blob was added');
  });
});
