import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkContainerName, isValidContainerName, localPathFor } from './names.js';
import { normalizePrefix, planPut } from './transfer.js';
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
