/**
 * `slurmkit cp`: files between this machine and a node, like `docker cp` and ElastiCluster's
 * `sftp`, on every provider. Without a shared host folder this is how a user puts a script into
 * the cluster. Everything goes through the provider's exec as a tar stream (base64 on the wire,
 * so it is text either way), so it needs nothing in the node but tar and base64.
 *
 * Owner and mode are kept: into a node as root, a file keeps its owner and mode; with `user`, the
 * user's tar writes it, so it is theirs, mode kept, and the user's permissions apply. Out of a
 * node, files are the caller's (as with `docker cp`), mode kept. Files are held in memory: for
 * data, use blob storage.
 */
import { lstat, mkdir, readdir, readFile, readlink, rename, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { basename, dirname, join, posix, resolve } from 'node:path';
import tar from 'tar-stream';
import { headOf, labelOf, providerFor } from '../cluster/nodes.js';
import { requireState, type ClusterState } from '../cluster/state.js';
import { CLUSTER_NAME } from '../spec/names.js';
import { SlurmkitError } from '../util/errors.js';
import { shellQuote } from '../util/run.js';
import { packTar } from '../util/tar.js';
import { asClusterUser } from './users.js';

export type Place = { kind: 'local'; path: string } | { kind: 'node'; cluster: string; node?: string; path: string };

/** `NAME:[NODE:]PATH` is a place in a cluster (PATH absolute); anything else a path here. */
export function parsePlace(arg: string, which: 'SRC' | 'DEST'): Place {
  const m = /^([a-z][a-z0-9-]{0,30}):(?:([a-z][a-z0-9-]*):)?(.*)$/.exec(arg);
  if (!m || !CLUSTER_NAME.test(m[1]!)) return { kind: 'local', path: arg };
  const path = m[3]!;
  if (!path.startsWith('/')) {
    throw new SlurmkitError('USAGE', `${which} ${arg}: the path in a node must be absolute`, {
      hint: `e.g. ${m[1]}:/home/alice/job.sh or ${m[1]}:c1:/tmp/ (a local path with ":" in it: write ./${arg})`,
    });
  }
  return { kind: 'node', cluster: m[1]!, ...(m[2] ? { node: m[2] } : {}), path: posix.normalize(path) };
}

export interface CopyResult {
  from: string;
  to: string;
  files: number;
  bytes: number;
  ms: number;
}

interface Entry {
  name: string;
  type: 'file' | 'directory' | 'symlink';
  mode: number;
  uid: number;
  gid: number;
  mtime: Date;
  content?: Buffer;
  linkname?: string;
}

/** The tree at `path` as tar entries whose top name is `name`. */
async function readTree(path: string, name: string, out: Entry[] = []): Promise<Entry[]> {
  const st = await lstat(path);
  const base = { name, mode: st.mode & 0o7777, uid: st.uid, gid: st.gid, mtime: st.mtime };
  if (st.isSymbolicLink()) out.push({ ...base, type: 'symlink', linkname: await readlink(path) });
  else if (st.isDirectory()) {
    out.push({ ...base, type: 'directory' });
    for (const child of (await readdir(path)).sort()) await readTree(join(path, child), `${name}/${child}`, out);
  } else if (st.isFile()) out.push({ ...base, type: 'file', content: await readFile(path) });
  // Sockets, fifos and devices are not copied (as with docker cp).
  return out;
}

async function unpack(archive: Buffer): Promise<Entry[]> {
  const x = tar.extract();
  const entries: Entry[] = [];
  const done = new Promise<void>((res, rej) => {
    x.on('finish', () => res());
    x.on('error', rej);
  });
  x.on('entry', (header, stream, next) => {
    const chunks: Buffer[] = [];
    stream.on('data', (c: unknown) => void chunks.push(c as Buffer));
    stream.on('end', () => {
      const type = header.type === 'directory' ? 'directory' : header.type === 'symlink' ? 'symlink' : header.type === 'file' ? 'file' : undefined;
      if (type) {
        entries.push({
          name: header.name.replace(/\/+$/, ''),
          type,
          mode: header.mode ?? 0o644,
          uid: header.uid ?? 0,
          gid: header.gid ?? 0,
          mtime: header.mtime ?? new Date(),
          ...(type === 'file' ? { content: Buffer.concat(chunks) } : {}),
          ...(header.linkname ? { linkname: header.linkname } : {}),
        });
      }
      next();
    });
    stream.resume();
  });
  x.end(archive);
  await done;
  return entries;
}

/** Where a copy lands: into `dest` when it is a folder, else as `dest` itself (its folder must exist). */
type Landing = { dir: string; name: string } | { missing: string } | { conflict: string };

const describe = (p: Place): string => (p.kind === 'local' ? p.path : `${p.cluster}:${p.node ? `${p.node}:` : ''}${p.path}`);

async function clusterOf(p: Extract<Place, { kind: 'node' }>): Promise<{ state: ClusterState; node: string }> {
  const state = await requireState(p.cluster);
  const node = p.node ?? headOf(state).name;
  if (!state.nodes.some((n) => n.name === node)) {
    throw new SlurmkitError('NOT_FOUND', `cluster ${state.name} has no node ${node}`, { hint: `nodes: ${state.nodes.map((n) => n.name).join(', ')}` });
  }
  return { state, node };
}

const asUser = (state: ClusterState, user: string | undefined) => asClusterUser(state, user, '/');

/** Copies `src` to `dest`: one of them a place in a cluster (`NAME:[NODE:]PATH`), the other a path here. */
export async function copy(srcArg: string, destArg: string, opts: { user?: string } = {}): Promise<CopyResult> {
  const t0 = performance.now();
  const src = parsePlace(srcArg, 'SRC');
  const dest = parsePlace(destArg, 'DEST');
  if ((src.kind === 'node') === (dest.kind === 'node')) {
    throw new SlurmkitError('USAGE', 'one of SRC and DEST is a place in a cluster (NAME:[NODE:]PATH), the other a path on this machine', {
      hint: 'e.g. slurmkit cp job.sh lab:/home/alice/ or slurmkit cp lab:c1:/var/log/slurm/ ./logs',
    });
  }
  const result = src.kind === 'local' ? await upload(src.path, dest as Extract<Place, { kind: 'node' }>, opts.user) : await download(src, (dest as { path: string }).path, opts.user);
  return { from: describe(src), to: describe(dest), ...result, ms: Math.round(performance.now() - t0) };
}

async function inNode(state: ClusterState, node: string, script: string, who: ReturnType<typeof asUser>, input?: string) {
  return providerFor(state).exec({
    label: labelOf(state),
    node,
    command: ['bash', '-c', script],
    stdio: 'capture',
    ...who,
    ...(input === undefined ? {} : { input }),
  });
}

const LANDING_SCRIPT = (path: string) =>
  `p=${shellQuote(path)}; if [ -d "$p" ]; then echo dir; elif [ -e "$p" ]; then echo file; elif [ -d "$(dirname "$p")" ]; then echo new; else echo missing; fi`;

async function upload(srcPath: string, dest: Extract<Place, { kind: 'node' }>, user: string | undefined): Promise<{ files: number; bytes: number }> {
  const st = await stat(srcPath).catch(() => undefined);
  if (!st) throw new SlurmkitError('NOT_FOUND', `SRC ${srcPath} does not exist`, { hint: 'give a file or folder on this machine' });
  const { state, node } = await clusterOf(dest);
  const who = asUser(state, user);
  const where = (await inNode(state, node, LANDING_SCRIPT(dest.path), who)).stdout.trim();
  const landing: Landing =
    where === 'dir'
      ? { dir: dest.path, name: basename(resolve(srcPath)) }
      : where === 'missing'
        ? { missing: posix.dirname(dest.path) }
        : where === 'file' && st.isDirectory()
          ? { conflict: `${dest.path} is a file, and ${srcPath} a folder` }
          : { dir: posix.dirname(dest.path), name: posix.basename(dest.path) };
  if ('missing' in landing) throw new SlurmkitError('NOT_FOUND', `DEST: no folder ${landing.missing} on ${node}`, { hint: `make it first: slurmkit exec ${state.name} --node ${node} -- mkdir -p ${landing.missing}` });
  if ('conflict' in landing) throw new SlurmkitError('CONFLICT', `DEST: ${landing.conflict}`, { hint: 'copy into a folder instead' });
  const entries = await readTree(resolve(srcPath), landing.name);
  const archive = await packTar(entries);
  // As root tar keeps owners (-p keeps modes); as a user, the files are theirs.
  const r = await inNode(state, node, `base64 -d | tar -x -p -f - -C ${shellQuote(landing.dir)}`, who, archive.toString('base64'));
  if (r.exitCode !== 0) {
    throw new SlurmkitError('COMMAND_FAILED', `could not write into ${landing.dir} on ${node}${user ? ` as ${user}` : ''}: ${r.stderr.trim()}`);
  }
  return { files: entries.filter((e) => e.type === 'file').length, bytes: entries.reduce((n, e) => n + (e.content?.length ?? 0), 0) };
}

async function download(src: Extract<Place, { kind: 'node' }>, destPath: string, user: string | undefined): Promise<{ files: number; bytes: number }> {
  const { state, node } = await clusterOf(src);
  const who = asUser(state, user);
  const base = posix.basename(src.path) || '/';
  if (base === '/') throw new SlurmkitError('USAGE', `SRC ${describe(src)}: copy a file or folder, not /`);
  const r = await inNode(state, node, `test -e ${shellQuote(src.path)} || exit 44; tar -c -f - -C ${shellQuote(posix.dirname(src.path))} -- ${shellQuote(base)} | base64 -w0`, who);
  if (r.exitCode === 44) throw new SlurmkitError('NOT_FOUND', `SRC: no ${src.path} on ${node}${user ? ` that ${user} can see` : ''}`, { hint: `look with: slurmkit exec ${state.name} --node ${node} -- ls ${posix.dirname(src.path)}` });
  if (r.exitCode !== 0) throw new SlurmkitError('COMMAND_FAILED', `could not read ${src.path} on ${node}${user ? ` as ${user}` : ''}: ${r.stderr.trim()}`);
  const entries = await unpack(Buffer.from(r.stdout, 'base64'));
  const target = await stat(destPath).catch(() => undefined);
  let dir: string;
  let name: string;
  if (target?.isDirectory()) {
    dir = destPath;
    name = base;
  } else {
    dir = dirname(destPath);
    name = basename(destPath);
    if (!(await stat(dir).catch(() => undefined))?.isDirectory()) throw new SlurmkitError('NOT_FOUND', `DEST: no folder ${dir}`, { hint: `make it first: mkdir -p ${dir}` });
    if (target && entries[0]?.type === 'directory') throw new SlurmkitError('CONFLICT', `DEST: ${destPath} is a file, and ${describe(src)} a folder`, { hint: 'copy into a folder instead' });
  }
  let files = 0;
  let bytes = 0;
  for (const e of entries) {
    // Only what lies under the copied name, renamed: never a path outside DEST.
    const parts = e.name.split('/');
    if (parts[0] !== base || parts.some((p) => p === '..' || p === '')) continue;
    const to = join(dir, name, ...parts.slice(1));
    if (e.type === 'directory') await mkdir(to, { recursive: true, mode: e.mode });
    else if (e.type === 'symlink') {
      await rm(to, { force: true });
      await symlink(e.linkname ?? '', to);
    } else {
      // Written whole, then renamed: no half-written file under its name.
      const partial = `${to}.slurmkit-partial-${process.pid}`;
      await writeFile(partial, e.content ?? Buffer.alloc(0), { mode: e.mode });
      await rename(partial, to);
      files += 1;
      bytes += e.content?.length ?? 0;
    }
  }
  return { files, bytes };
}
