/**
 * The node image cache, on an engine of its own and a cache folder of its own: a build, a
 * second ensure that is instant, an import from the cache into an engine that lacks the image,
 * and a new build when an input changes. Small recipes (a few packages) keep the builds short;
 * mmdebstrap fetches from Debian's mirror.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { defaultRecipe, ensureImage, ensureRuntime, imageTag, listImages, recipeHash, removeImages, type ImageRecipe } from './image.js';
import { useTestEngine } from '../../testing/dockerd.js';

const { skip, engine } = await useTestEngine({ before, after }, { image: false });

/** Runs a command in a throwaway container of `tag`; its exit code and output. */
async function runIn(tag: string, cmd: string[]): Promise<{ code: number; out: string }> {
  const docker = engine().docker;
  // With a TTY, the log is the plain output (no stream headers).
  const container = await docker.createContainer({ Image: tag, Cmd: cmd, Tty: true, HostConfig: { NetworkMode: 'none' } });
  try {
    await container.start();
    const { StatusCode } = (await container.wait()) as { StatusCode: number };
    const logs = (await container.logs({ stdout: true, stderr: true })) as Buffer;
    return { code: StatusCode, out: logs.toString('latin1') };
  } finally {
    await container.remove({ force: true });
  }
}

describe('node image cache', { skip }, () => {
  let cache = '';
  const saved = process.env.SLURMKIT_IMAGE_CACHE;
  before(async () => {
    cache = await mkdtemp('/var/tmp/slurmkit-image-cache-');
    process.env.SLURMKIT_IMAGE_CACHE = cache;
  });
  after(async () => {
    if (saved === undefined) delete process.env.SLURMKIT_IMAGE_CACHE;
    else process.env.SLURMKIT_IMAGE_CACHE = saved;
    await rm(cache, { recursive: true, force: true });
  });

  const small: ImageRecipe = { ...defaultRecipe(), packages: ['procps'] };

  test('built once, then instant from the engine, then imported from the cache; a changed input builds anew', { timeout: 300_000 }, async () => {
    const docker = engine().docker;
    const first = await ensureImage(docker, small);
    assert.deepEqual(first, { tag: imageTag(small), source: 'built' });
    assert.deepEqual(await readdir(cache), [`${recipeHash(small)}.tar`], 'the tarball is in the cache, no partial file left');
    assert.equal((await runIn(first.tag, ['pgrep', '--version'])).code, 0, 'the image runs its packages');

    const t0 = performance.now();
    assert.deepEqual(await ensureImage(docker, small), { tag: first.tag, source: 'engine' });
    assert.ok(performance.now() - t0 < 2_000, 'a second ensure asks the engine and is done');

    await docker.getImage(first.tag).remove();
    assert.deepEqual(await ensureImage(docker, small), { tag: first.tag, source: 'cache' });

    const changed: ImageRecipe = { ...small, packages: ['procps', 'psmisc'] };
    assert.notEqual(imageTag(changed), first.tag);
    assert.deepEqual(await ensureImage(docker, changed), { tag: imageTag(changed), source: 'built' });
    assert.equal((await runIn(imageTag(changed), ['killall', '--version'])).code, 0, 'the new input is in the new image');

    const listed = await listImages(docker);
    for (const tag of [first.tag, imageTag(changed)]) {
      assert.deepEqual(
        listed.filter((i) => i.tag === tag).map((i) => [i.inEngine, i.cached]),
        [[true, true]],
        tag,
      );
    }
    // Neither is the current recipe's image: `image rm --stale` takes both, from the engine and the cache.
    const removed = await removeImages(docker, 'stale');
    assert.equal(removed.length, 4, removed.join('\n'));
    assert.deepEqual(await readdir(cache), []);
    assert.deepEqual(await listImages(docker), []);
  });

  test('the node image holds no munge key', { timeout: 300_000 }, async () => {
    // Built here only if the machine's cache lacks it (setup builds it once).
    delete process.env.SLURMKIT_IMAGE_CACHE;
    try {
      const { tag } = await ensureImage(engine().docker);
      const r = await runIn(tag, ['bash', '-c', 'ls -A /etc/munge; test ! -e /etc/munge/munge.key']);
      assert.equal(r.code, 0, `found: ${r.out}`);
    } finally {
      process.env.SLURMKIT_IMAGE_CACHE = cache;
    }
  });

  test("slurmkit's program goes into the node image as one more layer, once, and runs there at this machine's paths", { timeout: 300_000 }, async () => {
    delete process.env.SLURMKIT_IMAGE_CACHE;
    try {
      const docker = engine().docker;
      const base = await ensureImage(docker);
      // An earlier version of the program, as a build of yesterday's slurmkit left it.
      const earlier = `${base.tag.split(':')[1]}-000000000000`;
      const old = await docker.createContainer({ Image: base.tag, Cmd: ['true'] });
      await old.commit({ repo: 'slurmkit-node', tag: earlier, changes: [`LABEL slurmkit.image=${earlier}`] } as object);
      await old.remove();
      const made = performance.now();
      const withProgram = await ensureRuntime(docker, base);
      console.log(`# program layer made in ${Math.round(performance.now() - made)} ms`);
      assert.match(withProgram.tag, new RegExp(`^${base.tag}-[0-9a-f]{12}$`));
      const task = fileURLToPath(new URL('../../jobs/task.js', import.meta.url));
      const r = await runIn(withProgram.tag, [process.execPath, '-e', `console.log(process.version + ' ' + require('fs').existsSync(${JSON.stringify(task)}))`]);
      assert.equal(r.out.trim(), `${process.version} true`);
      // Made once: a second ensure finds it in the engine.
      const t0 = performance.now();
      assert.equal((await ensureRuntime(docker, base)).tag, withProgram.tag);
      assert.ok(performance.now() - t0 < 2_000);
      // The earlier version is gone from the engine; the current one is there, beside the node
      // image it is made from; no build container is left.
      const listed = (await listImages(docker)).filter((i) => i.inEngine).map((i) => `${i.tag} ${i.current ? 'current' : 'stale'}`);
      assert.deepEqual(listed.sort(), [`${base.tag} current`, `${withProgram.tag} current`].sort());
      assert.deepEqual(await docker.listContainers({ all: true }), []);
    } finally {
      process.env.SLURMKIT_IMAGE_CACHE = cache;
    }
  });
});
