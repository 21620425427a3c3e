/**
 * `get -o DIR` against a store whose blob names are hostile: the names come from storage, where
 * the SDK or any other tool can create "../x" or "/etc/x". A stand-in store serves the names
 * (the real-Azurite version of this is get-escape.test.ts); the file system is real.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { SlurmkitError } from '../util/errors.js';
import type { BlobStore } from './store.js';
import { getToDir } from './transfer.js';

/** Just what getToDir uses: list, stat and download to a file. */
function fakeStore(blobs: Record<string, string>): BlobStore {
  const info = (name: string) => ({ name, size: Buffer.byteLength(blobs[name]!), lastModified: '', etag: '', metadata: {} });
  const fake = {
    endpoint: { cluster: 'lab' },
    listBlobs: async (_c: string, prefix = '') => Object.keys(blobs).filter((n) => n.startsWith(prefix)).sort().map(info),
    stat: async (_c: string, name: string) => info(name),
    getToFile: async (_c: string, name: string, path: string) => {
      await mkdir(dirname(path), { recursive: true });
      await writeFile(path, blobs[name]!);
      return { bytes: Buffer.byteLength(blobs[name]!) };
    },
  };
  return fake as unknown as BlobStore;
}

/** Every regular file under `dir` (links are not followed), as paths relative to it. */
async function filesUnder(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true }).catch(() => []);
  return entries.filter((e) => e.isFile()).map((e) => join(e.parentPath ?? e.path, e.name).slice(dir.length + 1)).sort();
}

async function scratch(): Promise<string> {
  return mkdtemp('/var/tmp/slurmkit-get-');
}

test('get of a container with "../", "/" and "a/../../x" names saves nothing and names every bad blob', async () => {
  const root = await scratch();
  try {
    const out = join(root, 'deep', 'out');
    const store = fakeStore({ 'ok.txt': 'ok', '../escape.txt': 'x', '/abs.txt': 'x', 'a/../../x': 'x', 'a//b': 'x', 'sub/ü b.txt': 'u' });
    await assert.rejects(getToDir(store, 'data', out), (e: unknown) => {
      assert.ok(e instanceof SlurmkitError && e.code === 'CONFLICT', String(e));
      assert.match(e.message, /4 blobs of container data cannot be saved as files under .*; nothing was downloaded/);
      assert.deepEqual(e.details.map((d) => d.split(': ')[0]), ['"../escape.txt"', '"/abs.txt"', '"a/../../x"', '"a//b"']);
      assert.match(e.hint ?? '', /--prefix/);
      return true;
    });
    assert.deepEqual(await filesUnder(root), [], 'not one file anywhere, the -o folder included');

    // The safe part of the container is still reachable with --prefix.
    const r = await getToDir(store, 'data', out, { prefix: 'sub/' });
    assert.deepEqual(r.blobs.map((b) => b.name), ['sub/ü b.txt']);
    assert.deepEqual(await filesUnder(root), ['deep/out/sub/ü b.txt']);
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});

test('get of one blob named "../x" is USAGE naming BLOB, before any request', async () => {
  const root = await scratch();
  try {
    const store = fakeStore({ '../escape.txt': 'x' });
    await assert.rejects(getToDir(store, 'data', join(root, 'out'), { blob: '../escape.txt' }), (e: unknown) => {
      assert.ok(e instanceof SlurmkitError && e.code === 'USAGE', String(e));
      assert.match(e.message, /^invalid BLOB "\.\.\/escape\.txt": it has a "\." or "\.\." path segment/);
      assert.match(e.hint ?? '', /slurmkit blob lab rm data \.\.\/escape\.txt`/);
      return true;
    });
    assert.deepEqual(await filesUnder(root), []);
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});

test('get never writes through a symbolic link that leads out of the -o folder', async () => {
  const root = await scratch();
  try {
    const out = join(root, 'out');
    const elsewhere = join(root, 'elsewhere');
    await mkdir(join(out, 'real'), { recursive: true });
    await mkdir(elsewhere);
    await symlink(elsewhere, join(out, 'link'));
    await symlink(join(out, 'real'), join(out, 'inner'));

    await assert.rejects(getToDir(fakeStore({ 'a.txt': 'a', 'link/x.txt': 'x' }), 'data', out), (e: unknown) => {
      assert.ok(e instanceof SlurmkitError && e.code === 'CONFLICT', String(e));
      assert.match(e.message, /blob "link\/x\.txt" would be saved through .*\/out\/link, a symbolic link out of/);
      return true;
    });
    assert.deepEqual(await readdir(elsewhere), []);
    assert.deepEqual(await filesUnder(out), [], 'nothing at all was downloaded');

    // A link that stays inside the folder is the user's own layout: files go through it.
    await getToDir(fakeStore({ 'inner/y.txt': 'y' }), 'data', out);
    assert.equal(await readFile(join(out, 'real', 'y.txt'), 'utf8'), 'y');
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});

test('names with spaces, unicode, backslashes and leading dots are saved under exactly those names', async () => {
  const root = await scratch();
  try {
    const names = ['a b.txt', 'ünï/名前 🚀.txt', 'back\\slash.txt', '..hidden', 'x/...', "it's $(x).txt", 'new\nline.txt'];
    const blobs = Object.fromEntries(names.map((n) => [n, `content of ${n}`]));
    const r = await getToDir(fakeStore(blobs), 'data', join(root, 'out'));
    assert.equal(r.files, names.length);
    for (const n of names) assert.equal(await readFile(join(root, 'out', n), 'utf8'), `content of ${n}`, JSON.stringify(n));
    assert.deepEqual(await readdir(root), ['out']);
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});
