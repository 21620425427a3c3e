/**
 * `slurmkit blob NAME ACTION ...`: the blob storage of a cluster. Thin: parse, call
 * src/storage, print. The cluster name comes before the action, so the actions are parsed by a
 * small program of their own that gets the rest of the command line.
 */
import { Command } from 'commander';
import type { BlobStore } from '../storage/blob.js';
import { checkContainerName, checkBlobName } from '../storage/names.js';
import type { TransferProgress } from '../storage/transfer.js';
import { SlurmkitError } from '../util/errors.js';
import { shellQuote } from '../util/run.js';
import { Progress, formatMs } from '../util/progress.js';
import { print, renderTable } from './table.js';

const ACTIONS = `
Actions:
  mk <container>                             create a container (an existing one is kept)
  ls [container] [--prefix P]                list containers, or the blobs of one container
  put <container> <path...> [--prefix P]     upload files and folders (blob names are paths relative to each folder)
  get <container> [blob] -o <dir>            download one blob or the whole container, creating folders
  rm <container> [blob]                      delete a blob, or a container with everything in it
  info                                       where the storage is and the file with its connection string, for jobs
Every action takes --json. Help for one action: slurmkit blob NAME ACTION --help

Storage is the cluster's own Azurite (started on its head node when first needed), or the
account in AZURE_STORAGE_CONNECTION_STRING when that is set.`;

export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u += 1;
  }
  return u === 0 ? `${n} B` : `${v.toFixed(1)} ${units[u]}`;
}

// Storage, the Azure SDK and the progress bar load only when a blob command runs: every other command starts faster.
const storage = () => import('../storage/blob.js');
const transfer = () => import('../storage/transfer.js');

async function storeFor(cluster: string): Promise<BlobStore> {
  const { ensureBlobStorage, openBlobStore } = await storage();
  return openBlobStore(await ensureBlobStorage(cluster, { progress: Progress.stderr() }));
}

/** A progress bar on stderr when it is a terminal; nothing otherwise (the summary line follows). */
async function progressBar(verb: string): Promise<{ onProgress?: (p: TransferProgress) => void; stop(): void }> {
  if (!process.stderr.isTTY) return { stop: () => undefined };
  const { default: cliProgress } = await import('cli-progress');
  const bar = new cliProgress.SingleBar(
    {
      stream: process.stderr,
      format: `${verb} [{bar}] {percentage}% | {files}/{totalFiles} files | {done} of {all}`,
      hideCursor: true,
      barsize: 30,
      fps: 10,
    },
    cliProgress.Presets.shades_classic,
  );
  let total = 0;
  return {
    onProgress(p) {
      const payload = { files: p.files, totalFiles: p.totalFiles, done: formatBytes(p.bytes), all: formatBytes(p.totalBytes) };
      if (total === 0) {
        total = Math.max(p.totalBytes, 1);
        bar.start(total, 0, payload);
      }
      bar.update(p.totalBytes === 0 ? (p.files === p.totalFiles ? 1 : 0) : p.bytes, payload);
    },
    stop() {
      if (total > 0) bar.stop();
    },
  };
}

/**
 * Runs a transfer that Ctrl-C or SIGTERM cancels cleanly: every transfer stops, no partial file
 * is left, and the command fails INTERRUPTED (exit 130).
 */
async function cancellable<T>(fn: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const ac = new AbortController();
  const cancel = () => ac.abort();
  // The CLI's own interrupt signal, when it has one; a signal handler of our own otherwise.
  const outer = Progress.stderr().signal;
  if (outer?.aborted) cancel();
  outer?.addEventListener('abort', cancel, { once: true });
  process.once('SIGINT', cancel);
  process.once('SIGTERM', cancel);
  try {
    return await fn(ac.signal);
  } catch (err) {
    if (ac.signal.aborted) throw new SlurmkitError('INTERRUPTED', 'interrupted; no partially written file was left');
    throw err;
  } finally {
    outer?.removeEventListener('abort', cancel);
    process.removeListener('SIGINT', cancel);
    process.removeListener('SIGTERM', cancel);
  }
}

function positiveInt(value: string, flag: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 64) {
    throw new SlurmkitError('USAGE', `${flag} must be a whole number from 1 to 64, got "${value}"`);
  }
  return n;
}

function metadataPair(value: string, previous: Record<string, string> = {}): Record<string, string> {
  const eq = value.indexOf('=');
  if (eq <= 0) throw new SlurmkitError('USAGE', `--metadata takes KEY=VALUE, got "${value}"`);
  return { ...previous, [value.slice(0, eq)]: value.slice(eq + 1) };
}

/** The actions of one cluster's storage, as a program of their own. */
function actionsProgram(cluster: string): Command {
  const sub = new Command(`slurmkit blob ${cluster}`)
    .exitOverride()
    .showSuggestionAfterError()
    .configureOutput({ outputError: (str, write) => write(str) })
    .addHelpText('after', ACTIONS);

  sub
    .command('mk')
    .description('create a container; an existing one is kept')
    .argument('<container>', '3-63 lowercase letters, digits and single hyphens')
    .option('--json', 'print the result as JSON')
    .action(async (container: string, opts) => {
      checkContainerName(container);
      const r = await (await storeFor(cluster)).mk(container);
      print(opts.json, r, () => (r.created ? `Created container ${container}.` : `Container ${container} already exists.`));
    });

  sub
    .command('ls')
    .description('list containers, or the blobs of one container')
    .argument('[container]')
    .option('--prefix <prefix>', 'only names that start with this')
    .option('--json', 'print as JSON')
    .action(async (container: string | undefined, opts) => {
      if (container !== undefined) checkContainerName(container);
      const store = await storeFor(cluster);
      if (container === undefined) {
        const containers = await store.listContainers(opts.prefix);
        print(opts.json, containers, () =>
          containers.length === 0
            ? `No containers. Create one with: slurmkit blob ${cluster} mk CONTAINER`
            : renderTable(['CONTAINER', 'LAST MODIFIED'], containers.map((c) => [c.name, c.lastModified])),
        );
        return;
      }
      const blobs = await store.listBlobs(container, opts.prefix);
      print(opts.json, blobs, () =>
        blobs.length === 0
          ? `Container ${container} has no blobs${opts.prefix ? ` under "${opts.prefix}"` : ''}.`
          : renderTable(['SIZE', 'LAST MODIFIED', 'NAME'], blobs.map((b) => [String(b.size), b.lastModified, b.name])),
      );
    });

  sub
    .command('put')
    .description('upload files and folders; a folder\'s files are named by their path relative to it')
    .argument('<container>')
    .argument('<path...>', 'files or folders')
    .option('--prefix <prefix>', 'put every blob under this name prefix (a "/" is added)')
    .option('--metadata <key=value>', 'set metadata on every blob (repeatable)', metadataPair)
    .option('--concurrency <n>', 'files in flight at once', '8')
    .option('--json', 'print the result as JSON')
    .action(async (container: string, paths: string[], opts) => {
      checkContainerName(container);
      const concurrency = positiveInt(opts.concurrency, '--concurrency');
      const store = await storeFor(cluster);
      const bar = await progressBar('put');
      const { putPaths } = await transfer();
      const r = await cancellable((signal) =>
        putPaths(store, container, paths, { prefix: opts.prefix, metadata: opts.metadata, concurrency, signal, ...(bar.onProgress ? { onProgress: bar.onProgress } : {}) }),
      ).finally(() => bar.stop());
      for (const s of r.skipped) process.stderr.write(`skipped ${s}: not a file or folder\n`);
      print(opts.json, r, () => `Uploaded ${r.files} file(s), ${formatBytes(r.bytes)} to container ${container} in ${formatMs(r.ms)}.`);
    });

  sub
    .command('get')
    .description('download one blob, or every blob of a container, into a folder (as DIR/BLOB-NAME)')
    .argument('<container>')
    .argument('[blob]', 'one blob; default: all of them')
    .requiredOption('-o, --output <dir>', 'folder to download into (created if missing)')
    .option('--prefix <prefix>', 'only blobs whose names start with this')
    .option('--concurrency <n>', 'files in flight at once', '8')
    .option('--json', 'print the result as JSON')
    .action(async (container: string, blob: string | undefined, opts) => {
      checkContainerName(container);
      if (blob !== undefined) checkBlobName(blob);
      if (blob !== undefined && opts.prefix !== undefined) throw new SlurmkitError('USAGE', 'give either a BLOB or --prefix, not both');
      const concurrency = positiveInt(opts.concurrency, '--concurrency');
      const store = await storeFor(cluster);
      const bar = await progressBar('get');
      const { getToDir } = await transfer();
      const r = await cancellable((signal) =>
        getToDir(store, container, opts.output, {
          ...(blob !== undefined ? { blob } : {}),
          ...(opts.prefix !== undefined ? { prefix: opts.prefix } : {}),
          concurrency,
          signal,
          ...(bar.onProgress ? { onProgress: bar.onProgress } : {}),
        }),
      ).finally(() => bar.stop());
      print(opts.json, r, () => `Downloaded ${r.files} file(s), ${formatBytes(r.bytes)} from container ${container} to ${opts.output} in ${formatMs(r.ms)}.`);
    });

  sub
    .command('rm')
    .description('delete a blob, or a whole container with every blob in it')
    .argument('<container>')
    .argument('[blob]')
    .option('--force', 'succeed when it does not exist')
    .option('--json', 'print the result as JSON')
    .action(async (container: string, blob: string | undefined, opts) => {
      checkContainerName(container);
      if (blob !== undefined) checkBlobName(blob);
      const r = await (await storeFor(cluster)).rm(container, blob, { missingOk: Boolean(opts.force) });
      const what = blob === undefined ? `container ${container}` : `blob ${blob} of container ${container}`;
      print(opts.json, { container, ...(blob !== undefined ? { blob } : {}), ...r }, () => (r.deleted ? `Deleted ${what}.` : `No ${what}; nothing to delete.`));
    });

  sub
    .command('info')
    .description('where the storage is, and the file (root-only) with a connection string for jobs (a shared access signature, not the account key)')
    .option('--json', 'print as JSON')
    .action(async (opts) => {
      const s = await storage();
      const e = await s.ensureBlobStorage(cluster, { progress: Progress.stderr() });
      await s.openBlobStore(e, { verify: false }); // writes the jobs' connection string file
      const value = { kind: e.kind, url: e.url, connectionStringFile: e.connectionStringFile };
      print(opts.json, value, () =>
        [
          `kind:                   ${e.kind === 'azurite' ? 'azurite (on the cluster\'s head node)' : 'azure (AZURE_STORAGE_CONNECTION_STRING)'}`,
          `endpoint:               ${e.url}`,
          `connection string file: ${e.connectionStringFile}`,
          `in a job (as root):     export AZURE_STORAGE_CONNECTION_STRING="$(cat ${shellQuote(e.connectionStringFile)})"`,
        ].join('\n'),
      );
    });

  return sub;
}

export function registerBlobCommands(program: Command): void {
  program
    .command('blob')
    .description("blob storage of a cluster: the cluster's own Azurite, or AZURE_STORAGE_CONNECTION_STRING's account")
    .usage('<name> <action> [args...]   (actions: mk, ls, put, get, rm, info)')
    .argument('[name]', 'cluster')
    .argument('[action]', 'mk, ls, put, get, rm or info')
    .argument('[args...]', "the action's arguments and options")
    // Options belong to the action; they are passed on untouched, --help included.
    .helpOption(false)
    .allowUnknownOption()
    .allowExcessArguments()
    .addHelpText('after', ACTIONS)
    .action(async (name: string | undefined, action: string | undefined, args: string[], _opts, self: Command) => {
      if (name === undefined || name.startsWith('-')) {
        self.outputHelp();
        if (name === '-h' || name === '--help') return;
        throw new SlurmkitError('USAGE', name === undefined ? 'missing the cluster NAME' : `unknown option ${name} before the cluster NAME`, {
          hint: 'options go after the action: slurmkit blob NAME ACTION [options], e.g. slurmkit blob lab ls --json',
        });
      }
      const sub = actionsProgram(name);
      if (action === undefined) {
        sub.outputHelp();
        throw new SlurmkitError('USAGE', 'missing the ACTION', { hint: `slurmkit blob ${name} ls` });
      }
      await sub.parseAsync([action, ...args], { from: 'user' });
    });
}
