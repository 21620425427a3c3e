/**
 * `slurmkit image build|ls|rm`: the node image of provider docker, built from Debian's packages
 * (no registry), kept as a tarball in the image cache and imported into the engine.
 */
import type { Command } from 'commander';
import { engine, reachable } from '../providers/docker/engine.js';
import { defaultRecipe, ensureImage, imageCache, listImages, recipeHash, removeImages } from '../providers/docker/image.js';
import { SlurmkitError } from '../util/errors.js';
import { Progress, formatMs } from '../util/progress.js';
import { print, renderTable } from './table.js';
import { formatBytes } from './blob.js';

/** The engine, or undefined when none answers (ls and rm then work on the cache alone). */
async function engineIfUp() {
  const docker = engine();
  return reachable(docker).then(
    () => docker,
    () => undefined,
  );
}

export function registerImageCommands(program: Command): void {
  const image = program.command('image').description("the docker provider's node image: build, ls, rm (built from Debian's packages, no registry)");

  image
    .command('build')
    .description('build the node image (cached by its inputs: a second build is instant) and import it into the engine')
    .option('--json', 'print the result as JSON')
    .action(async (opts) => {
      const progress = Progress.stderr();
      const docker = engine();
      await reachable(docker);
      const t0 = performance.now();
      const result = await progress.phase('node image', () => ensureImage(docker, defaultRecipe(), (line) => progress.info(`  ${line}`)));
      const ms = Math.round(performance.now() - t0);
      const how = { engine: 'already in the engine', cache: `imported from ${imageCache()}`, built: 'built with mmdebstrap and imported' }[result.source];
      print(Boolean(opts.json), { ...result, ms }, () => `${result.tag}: ${how} (${formatMs(ms)}).`);
    });

  image
    .command('ls')
    .description("slurmkit's node images in the engine and in the cache")
    .option('--json', 'print as JSON')
    .action(async (opts) => {
      const docker = await engineIfUp();
      const images = await listImages(docker);
      print(Boolean(opts.json), images, () =>
        [
          renderTable(
            ['IMAGE', 'SIZE', 'IN ENGINE', 'CACHED', 'CURRENT'],
            images.map((i) => [i.tag, formatBytes(i.sizeBytes), i.inEngine ? 'yes' : 'no', i.cached ? 'yes' : 'no', i.current ? 'yes' : '']),
          ),
          ...(docker ? [] : ['(no Docker engine answers: only the cache is shown)']),
        ].join('\n'),
      );
    });

  image
    .command('rm')
    .description('remove node images from the engine and the cache')
    .argument('[image]', 'slurmkit-node:HASH or HASH')
    .option('--stale', 'every image but the current one')
    .option('--all', 'every image, the current one too')
    .option('--json', 'print as JSON')
    .action(async (which: string | undefined, opts) => {
      const chosen = [which !== undefined, Boolean(opts.stale), Boolean(opts.all)].filter(Boolean).length;
      if (chosen !== 1) throw new SlurmkitError('USAGE', 'give one image, --stale or --all', { hint: 'see the images with: slurmkit image ls' });
      let select: { hash: string } | 'stale' | 'all' = opts.all ? 'all' : 'stale';
      if (which !== undefined) {
        const hash = which.replace(/^slurmkit-node:/, '');
        if (!/^[0-9a-f]{12}$/.test(hash)) {
          throw new SlurmkitError('USAGE', `image "${which}" is not a node image`, { hint: 'give slurmkit-node:HASH as `slurmkit image ls` shows it' });
        }
        select = { hash };
      }
      const docker = await engineIfUp();
      const removed = await removeImages(docker, select);
      if (which !== undefined && removed.length === 0) {
        throw new SlurmkitError('NOT_FOUND', `no node image ${which}`, { hint: 'see the images with: slurmkit image ls' });
      }
      print(Boolean(opts.json), { removed, current: recipeHash(defaultRecipe()) }, () => (removed.length ? removed.map((r) => `removed ${r}`).join('\n') : 'nothing to remove'));
    });
}
