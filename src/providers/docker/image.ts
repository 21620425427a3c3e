/**
 * The node image, built without any registry: a root filesystem made from Debian's packages by
 * mmdebstrap, kept as a tarball in a cache folder and imported into the engine. Its tag and its
 * tarball are named by a hash of everything that goes into it (the recipe), so a second build is
 * instant and a changed input builds anew.
 *
 * No secret is ever in it: munge's postinst generates a key, which the build deletes; each
 * cluster's key reaches its nodes when they start.
 */
import { createHash } from 'node:crypto';
import { spawn } from 'node:child_process';
import { createReadStream } from 'node:fs';
import { mkdir, readFile, readdir, rename, rm, stat } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import type Docker from 'dockerode';
import { SlurmkitError } from '../../util/errors.js';
import { run, which } from '../../util/run.js';
import { LABEL, engineMessage, isUnreachable, statusOf, unreachableError } from './engine.js';

export const IMAGE_REPO = 'slurmkit-node';

/** Every Debian package a node of any role needs: Slurm's daemons and clients, munge, the database, MPI, the sandbox and Jupyter. */
export const NODE_PACKAGES = [
  'slurmd',
  'slurmctld',
  'slurm-client',
  'slurmdbd',
  'slurmrestd',
  // AuthAltTypes=auth/jwt (rest: true) is loaded by slurmctld and slurmdbd from this package.
  'slurm-wlm-jwt-plugin',
  'munge',
  'mariadb-server',
  'openmpi-bin',
  // Users compile MPI programs on the cluster (mpicc calls gcc).
  'libopenmpi-dev',
  'gcc',
  'procps',
  'psmisc',
  'iproute2',
  'ca-certificates',
  // /home and /shared across hosts (provider swarm): a GlusterFS server on the head, a FUSE client on every node.
  'glusterfs-server',
  'glusterfs-client',
  // Sandboxed partitions: every task in bubblewrap; perf stat counts a job's own processes; the
  // firewall of network: cluster.
  'bubblewrap',
  'iptables',
  'linux-perf',
  // The login node: a Jupyter server per user, notebooks run from the command line, and the
  // Python run(fn) (cloudpickle) in the kernels and, through the job, on the workers.
  'jupyter-notebook',
  'python3-ipykernel',
  'jupyter-nbconvert',
  'python3-cloudpickle',
];

export interface ImageRecipe {
  suite: string;
  /** apt sources lines (one-line format) the root filesystem is built from. */
  sources: string[];
  packages: string[];
  /** Shell run on the finished root filesystem ($1), before it is packed. */
  customize: string;
}

export function defaultRecipe(): ImageRecipe {
  const mirror = process.env.SLURMKIT_DEBIAN_MIRROR ?? 'http://deb.debian.org/debian';
  const security = process.env.SLURMKIT_DEBIAN_SECURITY ?? 'http://deb.debian.org/debian-security';
  return {
    suite: 'bookworm',
    sources: [`deb ${mirror} bookworm main`, `deb ${mirror} bookworm-updates main`, `deb ${security} bookworm-security main`],
    packages: NODE_PACKAGES,
    // The apt lists are of no use in a node, and munge's postinst made a key: no secret in an image.
    customize: 'rm -rf "$1"/var/lib/apt/lists/* "$1"/etc/munge/munge.key',
  };
}

/** The first 12 hex characters of the recipe's hash: the image's tag and its tarball's name. */
export function recipeHash(recipe: ImageRecipe): string {
  return createHash('sha256').update(JSON.stringify(recipe)).digest('hex').slice(0, 12);
}

export function imageTag(recipe: ImageRecipe): string {
  return `${IMAGE_REPO}:${recipeHash(recipe)}`;
}

/** Where built tarballs are kept (SLURMKIT_IMAGE_CACHE overrides it). */
export function imageCache(): string {
  return process.env.SLURMKIT_IMAGE_CACHE ?? '/var/cache/slurmkit/images';
}

const tarballOf = (recipe: ImageRecipe): string => join(imageCache(), `${recipeHash(recipe)}.tar`);

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

/**
 * Builds the recipe's root filesystem into the cache, unless it is there already. Written under
 * a temporary name and renamed, so a build that is cut off leaves no tarball that looks complete.
 */
export async function buildTarball(recipe: ImageRecipe, log: (line: string) => void = () => undefined): Promise<{ path: string; built: boolean }> {
  const path = tarballOf(recipe);
  if (await exists(path)) return { path, built: false };
  const mmdebstrap = await which('mmdebstrap');
  if (!mmdebstrap) {
    throw new SlurmkitError('PRECONDITION', 'building the node image needs mmdebstrap, which is not installed', {
      hint: 'apt-get install mmdebstrap (scripts/setup.sh installs it)',
    });
  }
  await mkdir(imageCache(), { recursive: true, mode: 0o755 });
  const partial = `${path}.partial-${process.pid}`;
  log(`building ${imageTag(recipe)} from Debian ${recipe.suite} with mmdebstrap (${recipe.packages.length} packages)`);
  try {
    await run(mmdebstrap, [
      '--quiet',
      '--mode=auto',
      '--variant=minbase',
      '--format=tar',
      // Without usr-is-merged, usrmerge (and perl with it) is pulled in to merge /usr.
      `--include=${[...recipe.packages, 'usr-is-merged'].join(',')}`,
      '--hook-dir=/usr/share/mmdebstrap/hooks/merged-usr',
      '--dpkgopt=path-exclude=/usr/share/man/*',
      '--dpkgopt=path-exclude=/usr/share/doc/*',
      '--dpkgopt=path-exclude=/usr/share/locale/*',
      '--dpkgopt=path-exclude=/usr/share/info/*',
      `--customize-hook=${recipe.customize}`,
      recipe.suite,
      partial,
      ...recipe.sources,
    ]);
    await rename(partial, path);
  } finally {
    await rm(partial, { force: true });
  }
  return { path, built: true };
}

export interface EnsuredImage {
  tag: string;
  /** What was done: nothing (the engine had it), imported from the cache, or built and imported. */
  source: 'engine' | 'cache' | 'built';
}

/** Makes sure the engine has the recipe's image: from the engine, else the cache, else a fresh build. */
export async function ensureImage(docker: Docker, recipe = defaultRecipe(), log?: (line: string) => void): Promise<EnsuredImage> {
  const tag = imageTag(recipe);
  try {
    await docker.getImage(tag).inspect();
    return { tag, source: 'engine' };
  } catch (err) {
    if (isUnreachable(err)) throw unreachableError(err);
    if (statusOf(err) !== 404) throw err;
  }
  const { path, built } = await buildTarball(recipe, log);
  log?.(`importing ${tag} into the engine`);
  const hash = recipeHash(recipe);
  const stream = await docker.importImage(createReadStream(path), {
    repo: IMAGE_REPO,
    tag: hash,
    changes: [`LABEL ${LABEL.image}=${hash}`, 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'CMD ["bash"]'],
  } as object);
  await new Promise<void>((resolve, reject) =>
    docker.modem.followProgress(stream, (err: Error | null, out: { error?: string }[]) => {
      const failed = err?.message ?? out.find((o) => o.error)?.error;
      if (failed) reject(new SlurmkitError('COMMAND_FAILED', `the engine did not import ${tag}: ${failed}`));
      else resolve();
    }),
  );
  return { tag, source: built ? 'built' : 'cache' };
}

/** This install of slurmkit: its package.json, dist/ and node_modules/. */
const INSTALL = fileURLToPath(new URL('../../../', import.meta.url)).replace(/\/+$/, '');

/**
 * slurmkit's own program, which nodes run (Azurite in the head, batch tasks on the workers):
 * this Node.js and this install, at the same paths as on this machine, so that the commands
 * slurmkit gives nodes name them as it names them here.
 */
export function runtimePaths(): string[] {
  return [process.execPath, ...['package.json', 'package-lock.json', 'dist', 'node_modules'].map((p) => join(INSTALL, p))];
}

/**
 * What nodes never run: the compiler, type declarations, source maps, documents and tests. Half
 * of the files, and the engine's time to add the layer goes by the file.
 */
const RUNTIME_EXCLUDES = [join(INSTALL, 'node_modules/typescript'), join(INSTALL, 'node_modules/@types'), '*.d.ts', '*.d.mts', '*.d.cts', '*.map', '*.md', '*.test.js'].map((e) =>
  e.replace(/^\/+/, ''),
);

/**
 * The hash of the program nodes run: Node.js's version and path, the install's path, the
 * dependencies as package-lock.json pins them, and every file of dist/. Cheap (dist/ is small).
 */
export async function runtimeHash(): Promise<string> {
  const hash = createHash('sha256').update(`${process.version}\0${process.execPath}\0${INSTALL}\0`);
  hash.update(await readFile(join(INSTALL, 'package-lock.json')).catch(() => Buffer.from('no lock')));
  const walk = async (dir: string): Promise<void> => {
    for (const e of (await readdir(dir, { withFileTypes: true })).sort((a, b) => a.name.localeCompare(b.name))) {
      const path = join(dir, e.name);
      if (e.isDirectory()) await walk(path);
      else hash.update(`${relative(INSTALL, path)}\0`).update(await readFile(path));
    }
  };
  await walk(join(INSTALL, 'dist'));
  return hash.digest('hex').slice(0, 12);
}

/**
 * The node image with slurmkit's program in it, made from the node image by adding one layer
 * (a container of it gets the files, then is committed), tagged by both hashes: no registry, no
 * bind of this machine's files into nodes. Made once per program version and engine.
 */
export async function ensureRuntime(docker: Docker, base: EnsuredImage, log?: (line: string) => void): Promise<EnsuredImage> {
  const hash = `${base.tag.split(':')[1]}-${await runtimeHash()}`;
  const tag = `${IMAGE_REPO}:${hash}`;
  try {
    await docker.getImage(tag).inspect();
    return { tag, source: base.source };
  } catch (err) {
    if (isUnreachable(err)) throw unreachableError(err);
    if (statusOf(err) !== 404) throw err;
  }
  log?.(`adding slurmkit's program to ${base.tag} as ${tag}`);
  const container = await docker.createContainer({ Image: base.tag, Cmd: ['true'], Labels: { [LABEL.image]: `${hash}-build` } });
  try {
    const tar = spawn('tar', ['-c', '-f', '-', ...RUNTIME_EXCLUDES.map((e) => `--exclude=${e}`), '-C', '/', ...runtimePaths().map((p) => p.replace(/^\/+/, ''))], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    tar.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number>((resolve) => tar.on('close', (code) => resolve(code ?? 1)));
    await container.putArchive(tar.stdout, { path: '/' });
    if ((await exited) !== 0) throw new SlurmkitError('COMMAND_FAILED', `could not pack slurmkit's program for ${tag}: ${stderr.trim()}`);
    await container.commit({ repo: IMAGE_REPO, tag: hash, changes: [`LABEL ${LABEL.image}=${hash}`] } as object);
  } finally {
    await container.remove({ force: true }).catch(() => undefined);
  }
  // Earlier versions of the program go (a few hundred MiB each), unless a cluster still runs on one.
  const earlier = await docker.listImages({ filters: { label: [LABEL.image] } } as Docker.ListImagesOptions);
  for (const img of earlier) {
    const other = img.Labels?.[LABEL.image];
    if (other && other !== hash && other.includes('-')) await docker.getImage(`${IMAGE_REPO}:${other}`).remove().catch(() => undefined);
  }
  return { tag, source: base.source };
}

export interface ImageEntry {
  tag: string;
  /** In the engine, in the cache, or both. */
  inEngine: boolean;
  cached: boolean;
  sizeBytes: number;
  current: boolean;
}

/** slurmkit's node images: those the engine has (by label) and the tarballs in the cache. */
export async function listImages(docker: Docker | undefined): Promise<ImageEntry[]> {
  const base = recipeHash(defaultRecipe());
  const current = new Set([base, `${base}-${await runtimeHash()}`]);
  const entries = new Map<string, ImageEntry>();
  const entry = (hash: string): ImageEntry => {
    let e = entries.get(hash);
    if (!e) entries.set(hash, (e = { tag: `${IMAGE_REPO}:${hash}`, inEngine: false, cached: false, sizeBytes: 0, current: current.has(hash) }));
    return e;
  };
  for (const file of await readdir(imageCache()).catch(() => [] as string[])) {
    const m = /^([0-9a-f]{12})\.tar$/.exec(file);
    if (!m) continue;
    const e = entry(m[1]!);
    e.cached = true;
    e.sizeBytes = (await stat(join(imageCache(), file))).size;
  }
  if (docker) {
    const images = await docker.listImages({ filters: { label: [LABEL.image] } } as Docker.ListImagesOptions).catch((err: unknown) => {
      throw isUnreachable(err) ? unreachableError(err) : err;
    });
    for (const img of images) {
      const hash = img.Labels?.[LABEL.image];
      if (!hash) continue;
      const e = entry(hash);
      e.inEngine = true;
      e.sizeBytes = Math.max(e.sizeBytes, img.Size);
    }
  }
  return [...entries.values()].sort((a, b) => Number(b.current) - Number(a.current) || a.tag.localeCompare(b.tag));
}

/** Removes node images from the engine and the cache: one hash, or every one but the current. */
export async function removeImages(docker: Docker | undefined, which_: { hash: string } | 'stale' | 'all'): Promise<string[]> {
  const removed: string[] = [];
  // Images with slurmkit's program first: they are made from a node image.
  const entries = (await listImages(docker)).sort((a, b) => Number(b.tag.includes('-')) - Number(a.tag.includes('-')));
  for (const e of entries) {
    const hash = e.tag.split(':')[1]!;
    const wanted = which_ === 'all' || (which_ === 'stale' ? !e.current : hash === which_.hash || hash.startsWith(`${which_.hash}-`));
    if (!wanted) continue;
    if (e.inEngine && docker) {
      try {
        await docker.getImage(e.tag).remove();
        removed.push(`image ${e.tag}`);
      } catch (err) {
        throw new SlurmkitError('CONFLICT', `the engine did not remove ${e.tag}: ${engineMessage(err)}`, {
          hint: 'a cluster still uses it: `slurmkit down` that cluster first',
        });
      }
    }
    if (e.cached) {
      await rm(join(imageCache(), `${hash}.tar`), { force: true });
      removed.push(`tarball ${join(imageCache(), `${hash}.tar`)}`);
    }
  }
  return removed;
}

/** Follows a push or pull stream to its end; the first error in it rejects. */
function followed(docker: Docker, stream: NodeJS.ReadableStream, what: string): Promise<void> {
  return new Promise<void>((resolve, reject) =>
    docker.modem.followProgress(stream, (err: Error | null, out: { error?: string }[]) => {
      const failed = err?.message ?? out.find((o) => o.error)?.error;
      if (failed) reject(new SlurmkitError('COMMAND_FAILED', `${what}: ${failed}`, { hint: 'an engine that reaches a registry over plain HTTP needs it among its insecure-registries (daemon.json), or the registry needs TLS' }));
      else resolve();
    }),
  );
}

/**
 * Copies an image from one engine to others through a registry: pushed once from the source,
 * pulled by each engine that lacks it, tagged there with the same name, and checked by content
 * (image id: the configuration's digest, which push and pull keep). The registry's name for it
 * (`<registry>/<repository>:<tag>`) is untagged again everywhere. Returns the engines it pulled into.
 */
export async function distributeThroughRegistry(source: Docker, targets: { name: string; docker: Docker }[], tag: string, registry: string, log?: (line: string) => void): Promise<string[]> {
  const id = (await source.getImage(tag).inspect()).Id;
  const missing: { name: string; docker: Docker }[] = [];
  for (const t of targets) {
    if (!(await t.docker.getImage(tag).inspect().then((i) => i.Id === id, () => false))) missing.push(t);
  }
  if (missing.length === 0) return [];
  const [repo, version] = [tag.slice(0, tag.lastIndexOf(':')), tag.slice(tag.lastIndexOf(':') + 1)];
  const remote = `${registry}/${repo}`;
  // No credentials: the registry is the cluster's own, on the hosts' network.
  const auth = { authconfig: {} };
  await source.getImage(tag).tag({ repo: remote, tag: version });
  try {
    log?.(`pushing ${tag} to ${registry}`);
    await followed(source, (await source.getImage(`${remote}:${version}`).push({ tag: version, ...auth })) as NodeJS.ReadableStream, `pushing ${tag} to ${registry}`);
    await Promise.all(
      missing.map(async (t) => {
        log?.(`pulling ${tag} from ${registry} into the engine of ${t.name}`);
        await followed(t.docker, (await t.docker.pull(`${remote}:${version}`, auth)) as NodeJS.ReadableStream, `the engine of ${t.name} pulling ${remote}:${version}`);
        await t.docker.getImage(`${remote}:${version}`).tag({ repo, tag: version });
        await t.docker.getImage(`${remote}:${version}`).remove({ noprune: true }).catch(() => undefined);
        const pulled = await t.docker.getImage(tag).inspect();
        if (pulled.Id !== id) throw new SlurmkitError('COMMAND_FAILED', `the engine of ${t.name} holds ${tag} as ${pulled.Id}, not ${id}`);
      }),
    );
  } finally {
    await source.getImage(`${remote}:${version}`).remove({ noprune: true }).catch(() => undefined);
  }
  return missing.map((t) => t.name);
}

/**
 * Copies an image from one engine to others that lack it, without a registry: the engine's own
 * save (a tarball stream) into each other's load, side by side. An engine is skipped when it has
 * the tag with the same content (image id). Returns the engines it loaded.
 */
export async function distributeImage(source: Docker, targets: { name: string; docker: Docker }[], tag: string, log?: (line: string) => void): Promise<string[]> {
  const id = (await source.getImage(tag).inspect()).Id;
  const missing: { name: string; docker: Docker }[] = [];
  for (const t of targets) {
    const has = await t.docker
      .getImage(tag)
      .inspect()
      .then((i) => i.Id === id)
      .catch((err: unknown) => {
        if (isUnreachable(err)) throw unreachableError(err);
        return false;
      });
    if (!has) missing.push(t);
  }
  await Promise.all(
    missing.map(async (t) => {
      log?.(`loading ${tag} into the engine of ${t.name}`);
      const saved = (await source.getImage(tag).get()) as NodeJS.ReadableStream;
      const loading = await t.docker.loadImage(saved, { quiet: true });
      await new Promise<void>((resolve, reject) =>
        t.docker.modem.followProgress(loading, (err: Error | null, out: { error?: string }[]) => {
          const failed = err?.message ?? out.find((o) => o.error)?.error;
          if (failed) reject(new SlurmkitError('COMMAND_FAILED', `the engine of ${t.name} did not load ${tag}: ${failed}`));
          else resolve();
        }),
      );
      const loaded = await t.docker.getImage(tag).inspect();
      if (loaded.Id !== id) throw new SlurmkitError('COMMAND_FAILED', `the engine of ${t.name} holds ${tag} as ${loaded.Id}, not ${id}`);
    }),
  );
  return missing.map((t) => t.name);
}
