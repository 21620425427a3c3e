import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkContainerName, checkNewBlobName, isValidContainerName, localPathFor, unsafePathReason } from './names.js';
import { checkPutPrefix, normalizePrefix, planPut } from './transfer.js';
import { mkdtemp, mkdir, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { SlurmkitError } from '../util/errors.js';

test('container names follow Azure rules', () => {
  for (const ok of ['abc', 'data', 'run-42', 'a1b', '123', 'a'.repeat(63)]) assert.ok(isValidContainerName(ok), ok);
  for (const bad of ['ab', 'Bad_Name', 'UPPER', '-abc', 'abc-', 'a--b', 'a.b', 'a b', 'a'.repeat(64), '']) assert.ok(!isValidContainerName(bad), bad);
});

test('a bad container name is USAGE naming the argument, the rule and a fix', () => {
  assert.throws(
    () => checkContainerName('Bad_Name'),
    (e: unknown) =>
      e instanceof SlurmkitError && e.code === 'USAGE' && /CONTAINER "Bad_Name"/.test(e.message) && /lowercase letters/.test(e.message) && e.hint === 'for example: bad-name',
  );
});

test('blob names that would leave the download folder are refused', () => {
  assert.equal(localPathFor('/d', 'a/b.txt'), '/d/a/b.txt');
  for (const bad of ['../x', 'a/../../x', '/etc/passwd', 'a//b', 'dir/', './x']) {
    assert.throws(() => localPathFor('/d', bad), (e: unknown) => e instanceof SlurmkitError && e.code === 'CONFLICT', bad);
  }
});

test('put plans blob names relative to each folder, with a prefix, and refuses clashes', async () => {
  const dir = await mkdtemp('/var/tmp/slurmkit-plan-');
  try {
    await mkdir(join(dir, 'in', 'sub'), { recursive: true });
    await writeFile(join(dir, 'in', 'a.txt'), 'a');
    await writeFile(join(dir, 'in', 'sub', 'b.txt'), 'bb');
    await writeFile(join(dir, 'c.txt'), 'ccc');
    // A link back up must not loop.
    await symlink(join(dir, 'in'), join(dir, 'in', 'sub', 'loop'));
    const { items } = await planPut([join(dir, 'in'), join(dir, 'c.txt')], 'run/1');
    assert.deepEqual(
      items.map((i) => [i.blob, i.size]),
      [['run/1/a.txt', 1], ['run/1/c.txt', 3], ['run/1/sub/b.txt', 2]],
    );
    await writeFile(join(dir, 'a.txt'), 'other');
    await assert.rejects(planPut([join(dir, 'in'), join(dir, 'a.txt')]), (e: unknown) => e instanceof SlurmkitError && e.code === 'USAGE' && /a\.txt/.test(e.message));
    await assert.rejects(planPut([join(dir, 'missing')]), (e: unknown) => e instanceof SlurmkitError && e.code === 'NOT_FOUND');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('prefixes are folder-like', () => {
  assert.equal(normalizePrefix(undefined), '');
  assert.equal(normalizePrefix('runs/1'), 'runs/1/');
  assert.equal(normalizePrefix('/runs/1/'), 'runs/1/');
});

test('blob names that cannot be a relative path are told apart from merely unusual ones', () => {
  for (const bad of ['../escape.txt', 'a/../../x', '..', '/abs.txt', '//x', 'a//b', 'dir/', './x', 'a/.', 'a\0b']) {
    assert.ok(unsafePathReason(bad), JSON.stringify(bad));
  }
  for (const ok of ['a b/c d.txt', 'ünï/名前.txt', '🚀', '..hidden', '...', 'a..b', 'a\\b', '..\\..\\x', 'C:\\x', 'a\nb', '-rf', '$(id)', "it's"]) {
    assert.equal(unsafePathReason(ok), undefined, JSON.stringify(ok));
  }
});

test('localPathFor keeps every name inside the folder or refuses it (random names)', () => {
  // Deterministic: a fixed-seed LCG over the characters that matter for paths.
  const alphabet = ['a', 'b', '.', '..', '/', '\\', ' ', 'é', '名', '\0', '~', '-'];
  let seed = 12345;
  const next = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  for (let i = 0; i < 5000; i++) {
    const name = Array.from({ length: 1 + Math.floor(next() * 8) }, () => alphabet[Math.floor(next() * alphabet.length)]).join('');
    let path: string;
    try {
      path = localPathFor('/d/out', name);
    } catch (err) {
      assert.ok(err instanceof SlurmkitError && err.code === 'CONFLICT', `seed 12345, name ${JSON.stringify(name)}: ${String(err)}`);
      assert.ok(unsafePathReason(name), `refused a safe name ${JSON.stringify(name)}`);
      continue;
    }
    assert.ok(path.startsWith('/d/out/'), `${JSON.stringify(name)} -> ${path}`);
    assert.equal(path, `/d/out/${name}`, 'a safe name is saved under its own name');
  }
  // "..hidden" is a file name, not a way up.
  assert.equal(localPathFor('/d', '..hidden'), '/d/..hidden');
  assert.equal(localPathFor('/d', 'x/..y/z'), '/d/x/..y/z');
});

test('new blob names and put prefixes that get could not save are USAGE naming the argument', () => {
  for (const bad of ['../escape.txt', '/abs.txt', 'a/../../x', 'a//b', 'x/']) {
    assert.throws(
      () => checkNewBlobName(bad, 'BLOB'),
      (e: unknown) => e instanceof SlurmkitError && e.code === 'USAGE' && e.message.startsWith(`invalid BLOB ${JSON.stringify(bad)}: `),
      bad,
    );
  }
  for (const ok of ['a b.txt', 'ünï/名前.txt', '..hidden']) checkNewBlobName(ok);
  // Azure stores "a\\b" as "a/b": refused rather than silently renamed.
  assert.throws(() => checkNewBlobName('a\\b', 'BLOB'), (e: unknown) => e instanceof SlurmkitError && e.code === 'USAGE' && /turns into "\/"/.test(e.message));
  for (const bad of ['..', '../x', 'a/../b', 'a/./b', 'a//b']) {
    assert.throws(() => checkPutPrefix(bad), (e: unknown) => e instanceof SlurmkitError && e.code === 'USAGE' && e.message.includes(`--prefix ${JSON.stringify(bad)}`), bad);
  }
  // A leading "/" is dropped rather than refused: the name stays relative.
  assert.equal(checkPutPrefix('/runs/1'), 'runs/1/');
  assert.equal(checkPutPrefix('名前 x'), '名前 x/');
});

test('put names blobs after files with spaces and unicode as they are; a backslash is USAGE naming the file', async () => {
  const dir = await mkdtemp('/var/tmp/slurmkit-plan-');
  try {
    const names = ['a b.txt', 'ünï 名前.txt', '..dots', "it's $(x).txt"];
    for (const n of names) await writeFile(join(dir, n), n);
    const { items } = await planPut([dir], 'p q');
    assert.deepEqual(items.map((i) => i.blob).sort(), names.map((n) => `p q/${n}`).sort());
    await writeFile(join(dir, 'back\\slash.txt'), 'b');
    await assert.rejects(planPut([dir]), (e: unknown) => e instanceof SlurmkitError && e.code === 'USAGE' && e.message.includes(`blob name for ${join(dir, 'back\\slash.txt')}`));
    await assert.rejects(planPut([dir], '../up'), (e: unknown) => e instanceof SlurmkitError && e.code === 'USAGE' && /--prefix "\.\.\/up"/.test(e.message));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
