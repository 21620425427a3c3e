import { lstat, mkdir, readdir, realpath, stat } from 'node:fs/promises';
import { basename, dirname, join, relative, resolve, sep } from 'node:path';
import { SlurmkitError } from '../util/errors.js';
import { checkContainerName, checkNewBlobName, localPathFor, unsafePathReason } from './names.js';
import { shellQuote } from '../util/run.js';
import type { BlobStore } from './store.js';

/** Counts and bytes of a transfer so far; reported after every chunk. */
export interface TransferProgress {
  files: number;
  totalFiles: number;
  bytes: number;
  totalBytes: number;
}

export interface TransferOptions {
  /** Files in flight at once (default 8). */
  concurrency?: number;
  onProgress?: (p: TransferProgress) => void;
  /** Aborting stops every transfer; the promise rejects with the abort. */
  signal?: AbortSignal;
}

export interface PutItem {
  path: string;
  blob: string;
  size: number;
}

export interface PutResult {
  container: string;
  files: number;
  bytes: number;
  blobs: { name: string; size: number; path: string }[];
  /** Local entries that are neither files nor folders (sockets, fifos, devices): not uploaded. */
  skipped: string[];
  ms: number;
}

export interface GetResult {
  container: string;
  dir: string;
  files: number;
  bytes: number;
  blobs: { name: string; size: number; path: string }[];
  ms: number;
}

/** `runs/1` and `runs/1/` both put blobs under `runs/1/`. */
export function normalizePrefix(prefix: string | undefined): string {
  if (!prefix) return '';
  const p = prefix.replace(/^\/+/, '');
  return p === '' || p.endsWith('/') ? p : `${p}/`;
}

/** The normalized prefix of new blob names; one that would make names `get` cannot save is USAGE. */
export function checkPutPrefix(prefix: string | undefined): string {
  const pre = normalizePrefix(prefix);
  const why = pre === '' ? undefined : unsafePathReason(pre.slice(0, -1));
  if (why) throw new SlurmkitError('USAGE', `invalid --prefix ${JSON.stringify(prefix)}: ${why}`, { hint: 'a prefix is a relative folder name such as runs/1' });
  return pre;
}

/**
 * What `put` would upload: a file becomes PREFIX + its base name, a folder's files become
 * PREFIX + their path relative to that folder. Symbolic links are followed, each real folder
 * once. Two files that map to one blob name are refused before anything is sent.
 */
export async function planPut(paths: string[], prefix?: string): Promise<{ items: PutItem[]; skipped: string[] }> {
  const pre = checkPutPrefix(prefix);
  const items: PutItem[] = [];
  const skipped: string[] = [];
  const seenDirs = new Set<string>();

  const walk = async (dir: string, root: string): Promise<void> => {
    const st = await stat(dir);
    const id = `${st.dev}:${st.ino}`;
    if (seenDirs.has(id)) return;
    seenDirs.add(id);
    for (const entry of (await readdir(dir)).sort()) {
      const path = join(dir, entry);
      const s = await stat(path).catch(() => undefined);
      if (s?.isDirectory()) await walk(path, root);
      else if (s?.isFile()) items.push({ path, blob: pre + relative(root, path).split(sep).join('/'), size: s.size });
      else skipped.push(path);
    }
  };

  for (const path of paths) {
    const s = await stat(path).catch((err: NodeJS.ErrnoException) => {
      throw new SlurmkitError('NOT_FOUND', `cannot read ${path}: ${err.code === 'ENOENT' ? 'no such file or folder' : err.code ?? err.message}`);
    });
    if (s.isDirectory()) await walk(path, path);
    else if (s.isFile()) items.push({ path, blob: pre + basename(path), size: s.size });
    else throw new SlurmkitError('USAGE', `${path} is neither a file nor a folder`);
  }

  const byBlob = new Map<string, string>();
  for (const item of items) {
    checkNewBlobName(item.blob, `blob name for ${item.path}`);
    const other = byBlob.get(item.blob);
    if (other !== undefined) {
      throw new SlurmkitError('USAGE', `${other} and ${item.path} would both be uploaded as blob "${item.blob}"`, {
        hint: 'upload them in separate commands with different --prefix values',
      });
    }
    byBlob.set(item.blob, item.path);
  }
  items.sort((a, b) => a.blob.localeCompare(b.blob));
  return { items, skipped };
}

/**
 * Runs `fn` on every item, at most `limit` at a time. The first failure aborts the rest and
 * is what rejects; an abort of `signal` rejects with the abort.
 */
async function forEachLimit<T>(items: T[], limit: number, signal: AbortSignal | undefined, fn: (item: T, signal: AbortSignal) => Promise<void>): Promise<void> {
  const inner = new AbortController();
  const onAbort = () => inner.abort(signal!.reason);
  if (signal?.aborted) inner.abort(signal.reason);
  signal?.addEventListener('abort', onAbort, { once: true });
  let next = 0;
  let failure: { err: unknown } | undefined;
  const worker = async () => {
    while (!failure && !inner.signal.aborted && next < items.length) {
      const item = items[next++]!;
      try {
        await fn(item, inner.signal);
      } catch (err) {
        failure ??= { err };
        inner.abort(err);
      }
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
  } finally {
    signal?.removeEventListener('abort', onAbort);
  }
  if (signal?.aborted) throw signal.reason ?? new DOMException('aborted', 'AbortError');
  if (failure) throw failure.err;
}

/** Sums per-file progress into one report. */
function tracker(totalFiles: number, totalBytes: number, onProgress?: (p: TransferProgress) => void) {
  const loaded = new Map<string, number>();
  let bytes = 0;
  let files = 0;
  const report = () => onProgress?.({ files, totalFiles, bytes, totalBytes });
  return {
    progress(key: string, n: number) {
      bytes += n - (loaded.get(key) ?? 0);
      loaded.set(key, n);
      report();
    },
    done(key: string, size: number) {
      this.progress(key, size);
      files += 1;
      report();
    },
    start: report,
    get bytes() {
      return bytes;
    },
  };
}

/** Uploads files and folders (see planPut) into an existing container. */
export async function putPaths(
  store: BlobStore,
  container: string,
  paths: string[],
  opts: TransferOptions & { prefix?: string; metadata?: Record<string, string> } = {},
): Promise<PutResult> {
  const t0 = performance.now();
  checkContainerName(container);
  checkPutPrefix(opts.prefix);
  // Checked once up front: a missing container or a dead endpoint fails in seconds, before any upload.
  if (!(await store.exists(container))) {
    throw new SlurmkitError('NOT_FOUND', `container "${container}" does not exist`, { hint: `create it: slurmkit blob ${store.endpoint.cluster} mk ${container}` });
  }
  const { items, skipped } = await planPut(paths, opts.prefix);
  const totalBytes = items.reduce((n, i) => n + i.size, 0);
  const t = tracker(items.length, totalBytes, opts.onProgress);
  t.start();
  await forEachLimit(items, opts.concurrency ?? 8, opts.signal, async (item, signal) => {
    await store.putFile(container, item.blob, item.path, {
      ...(opts.metadata ? { metadata: opts.metadata } : {}),
      onProgress: (n) => t.progress(item.blob, n),
      signal,
    });
    t.done(item.blob, item.size);
  });
  return {
    container,
    files: items.length,
    bytes: totalBytes,
    blobs: items.map((i) => ({ name: i.blob, size: i.size, path: i.path })),
    skipped,
    ms: Math.round(performance.now() - t0),
  };
}

/**
 * Downloads one blob, or every blob of a container (optionally under a prefix), to `dir` as
 * `dir/<blob name>`, creating folders. Every file appears whole or not at all (see
 * BlobStore.getToFile). Names that cannot be files there are refused before any download.
 */
export async function getToDir(
  store: BlobStore,
  container: string,
  dir: string,
  opts: TransferOptions & { blob?: string; prefix?: string } = {},
): Promise<GetResult> {
  const t0 = performance.now();
  checkContainerName(container);
  if (opts.blob !== undefined) {
    const why = unsafePathReason(opts.blob);
    if (why) {
      throw new SlurmkitError('USAGE', `invalid BLOB ${JSON.stringify(opts.blob)}: ${why}, so it cannot be saved under ${dir}`, {
        hint: `delete it with \`slurmkit blob ${store.endpoint.cluster} rm ${container} ${shellQuote(opts.blob)}\`, or read it with the Azure SDK`,
      });
    }
  }
  const listed =
    opts.blob !== undefined
      ? [await store.stat(container, opts.blob)]
      : // Names ending in "/" are folder markers some tools create: nothing to download.
        (await store.listBlobs(container, opts.prefix)).filter((b) => !b.name.endsWith('/'));
  // Any name can be stored, through the SDK or other tools; every one that cannot be a file
  // inside `dir` is named, and nothing is downloaded.
  const unsafe = listed.flatMap((b) => {
    const why = unsafePathReason(b.name);
    return why ? [`${JSON.stringify(b.name)}: ${why}`] : [];
  });
  if (unsafe.length > 0) {
    const n = unsafe.length;
    throw new SlurmkitError('CONFLICT', `${n} blob${n === 1 ? '' : 's'} of container ${container} cannot be saved as files under ${dir}; nothing was downloaded`, {
      details: unsafe,
      hint: `download the others with --prefix, or delete these with \`slurmkit blob ${store.endpoint.cluster} rm ${container} BLOB\``,
    });
  }
  const items = listed.map((b) => ({ name: b.name, size: b.size, path: localPathFor(dir, b.name) }));
  const byPath = new Map(items.map((i) => [i.path, i]));
  const top = resolve(dir);
  await refuseLinksOutOf(top, items);
  for (const item of items) {
    for (let d = dirname(item.path); d !== top && d.length > top.length; d = dirname(d)) {
      const other = byPath.get(d);
      if (other) {
        throw new SlurmkitError('CONFLICT', `blobs "${other.name}" and "${item.name}" cannot both be saved: one would be a file and a folder`, {
          hint: 'download them separately, each with `get CONTAINER BLOB -o DIR` to a different folder',
        });
      }
    }
  }
  await mkdir(dir, { recursive: true });
  const totalBytes = items.reduce((n, i) => n + i.size, 0);
  const t = tracker(items.length, totalBytes, opts.onProgress);
  t.start();
  await forEachLimit(items, opts.concurrency ?? 8, opts.signal, async (item, signal) => {
    const { bytes } = await store.getToFile(container, item.name, item.path, { onProgress: (n) => t.progress(item.name, n), signal });
    t.done(item.name, bytes);
  });
  return { container, dir, files: items.length, bytes: t.bytes, blobs: items, ms: Math.round(performance.now() - t0) };
}

/**
 * A folder of `top` that is a symbolic link to somewhere else would take the files saved
 * "inside" it out of `top`. Links that stay inside `top` are fine; folders not made yet are ours.
 */
async function refuseLinksOutOf(top: string, items: { name: string; path: string }[]): Promise<void> {
  const realTop = await realpath(top).catch(() => undefined);
  if (realTop === undefined) return; // a fresh folder holds no links
  const checked = new Map<string, boolean>();
  const escapes = async (folder: string): Promise<boolean> => {
    let known = checked.get(folder);
    if (known === undefined) {
      const st = await lstat(folder).catch(() => undefined);
      if (!st?.isSymbolicLink()) known = false;
      else {
        const real = await realpath(folder).catch(() => undefined);
        known = real === undefined || !(real === realTop || real.startsWith(realTop + sep));
      }
      checked.set(folder, known);
    }
    return known;
  };
  for (const item of items) {
    const folders: string[] = [];
    for (let d = dirname(item.path); d !== top && d.length > top.length; d = dirname(d)) folders.unshift(d);
    for (const folder of folders) {
      if (await escapes(folder)) {
        throw new SlurmkitError('CONFLICT', `blob ${JSON.stringify(item.name)} would be saved through ${folder}, a symbolic link out of ${top}; nothing was downloaded`, {
          hint: 'download into a new folder, or remove the link',
        });
      }
    }
  }
}
