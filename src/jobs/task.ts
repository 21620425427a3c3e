/**
 * One Slurm array task of a blob batch, run inside a node:
 *   node dist/jobs/task.js <batch folder> <attempt> <task index>
 * It claims blobs one by one until none is left, and for each: download, convert, upload,
 * then write the blob's status. A task killed half-way leaves no status for the blobs it had
 * claimed, so the runner's retry picks them up again; an upload is atomic, so no half-written
 * output.
 */
import { spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { access, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { basename, join } from 'node:path';
import {
  attemptPath,
  claimPath,
  etagTag,
  manifestPath,
  readJson,
  SOURCE_KEY,
  statusPath,
  writeJsonAtomic,
  type Attempt,
  type BatchBlob,
  type BlobStatus,
  type Manifest,
} from './manifest.js';
import { signedUrlIo, type BlobIo } from './blob-io.js';

async function runCommand(command: string[], input: string, output: string): Promise<void> {
  const hasPlaceholders = command.some((a) => a.includes('{in}') || a.includes('{out}'));
  const args = hasPlaceholders
    ? command.map((a) => a.replaceAll('{in}', input).replaceAll('{out}', output))
    : [...command, input, output];
  await new Promise<void>((resolve, reject) => {
    const child = spawn(args[0]!, args.slice(1), {
      stdio: ['ignore', 'inherit', 'pipe'],
      env: { ...process.env, SLURMKIT_INPUT: input, SLURMKIT_OUTPUT: output },
    });
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => {
      stderr = (stderr + d.toString()).slice(-2000);
      process.stderr.write(d);
    });
    child.on('error', (err) => reject(new Error(`cannot run ${args[0]}: ${err.message}`)));
    child.on('exit', (code, signal) => {
      if (code === 0) resolve();
      else reject(new Error(`command exited with ${code ?? signal}${stderr.trim() ? `: ${stderr.trim().split('\n').slice(-3).join(' / ')}` : ''}`));
    });
  });
  await access(output).catch(() => {
    throw new Error('command succeeded but wrote no output file');
  });
}

async function convert(manifest: Manifest, blob: BatchBlob, data: Buffer, work: string): Promise<Buffer> {
  if ('builtin' in manifest.mode) {
    const { grayscale } = await import('./grayscale.js');
    return (await grayscale(data)).data;
  }
  const input = join(work, 'in', basename(blob.name));
  const output = join(work, 'out', basename(blob.name));
  await writeFile(input, data);
  await rm(output, { force: true });
  await runCommand(manifest.mode.command, input, output);
  return readFile(output);
}

/** Signed URLs when the runner made them (no SDK to load); otherwise the SDK with the connection string. */
async function blobIo(manifest: Manifest): Promise<BlobIo> {
  if (manifest.blobs.every((b) => b.getUrl && b.putUrl)) {
    return signedUrlIo();
  }
  const { BlobServiceClient } = await import('@azure/storage-blob');
  const connection = (await readFile(manifest.connectionStringFile, 'utf8')).trim();
  const service = BlobServiceClient.fromConnectionString(connection, { retryOptions: { maxTries: 4 } });
  return {
    get: (blob) => service.getContainerClient(manifest.input).getBlockBlobClient(blob.name).downloadToBuffer(),
    put: async (blob, data) => {
      await service.getContainerClient(manifest.output).getBlockBlobClient(blob.name).uploadData(data, {
        metadata: { [SOURCE_KEY]: etagTag(blob.etag) },
        ...(blob.contentType ? { blobHTTPHeaders: { blobContentType: blob.contentType } } : {}),
      });
    },
  };
}

const firstLine = (err: unknown): string => (err as Error).message.split('\n')[0]!.slice(0, 300);

async function main(): Promise<void> {
  const [dir, attemptArg, taskArg] = process.argv.slice(2);
  if (!dir || attemptArg === undefined || taskArg === undefined) {
    throw new Error('usage: task.js <batch folder> <attempt> <task index>');
  }
  const taskStartedAt = Math.round(performance.timeOrigin);
  const task = Number(taskArg);
  const manifest = await readJson<Manifest>(manifestPath(dir));
  const attempt = await readJson<Attempt>(attemptPath(dir, Number(attemptArg)));
  const byIndex = new Map(manifest.blobs.map((b) => [b.index, b]));
  const io = await blobIo(manifest);
  const node = hostname();
  // Tasks share the machine's cores with the other nodes' tasks: one libvips thread each.
  if ('builtin' in manifest.mode) (await import('./sharp.js')).sharp.concurrency(1);
  const work = await mkdtemp('/tmp/slurmkit-task-');
  await mkdir(join(work, 'in'));
  await mkdir(join(work, 'out'));

  // Blobs are not dealt out in advance: each task claims the next one nobody has, so a task
  // that starts late or gets small images simply takes more.
  let cursor = 0;
  const claimNext = (): number | undefined => {
    while (cursor < attempt.indices.length) {
      const index = attempt.indices[cursor++]!;
      try {
        closeSync(openSync(claimPath(dir, attempt.attempt, index), 'wx'));
        return index;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      }
    }
    return undefined;
  };
  // The next blob downloads while this one converts: transfer and CPU overlap.
  const fetchBlob = (index: number | undefined) => {
    if (index === undefined) return undefined;
    const data = io.get(byIndex.get(index)!);
    data.catch(() => undefined); // handled when awaited
    return { index, data };
  };
  // A result uploads (and its status is written) while the next blob converts. More uploads in
  // flight did not help: the storage service syncs each write to disk (Azurite does), and with
  // three per task the tasks waited on their downloads instead (interleaved runs of 1,000 photos:
  // 21.4 and 27.7 s with one, 22.2 and 32.4 s with three).
  let uploading: Promise<void> = Promise.resolve();
  try {
    let current = fetchBlob(claimNext());
    while (current) {
      const upcoming = fetchBlob(claimNext());
      const { index } = current;
      const blob = byIndex.get(index)!;
      const t0 = performance.now();
      const base = { index, name: blob.name, node, attempt: attempt.attempt, task, taskStartedAt };
      const failed = (stage: string, err: unknown, bytesIn: number): BlobStatus => ({
        ...base,
        state: 'failed',
        reason: stage === 'convert' ? firstLine(err) : `${stage} failed: ${firstLine(err)}`,
        retryable: stage !== 'convert',
        finishedAt: Date.now(),
        ms: Math.round(performance.now() - t0),
        bytesIn,
        bytesOut: 0,
      });
      let result: Buffer | undefined;
      let bytesIn = 0;
      let status: BlobStatus | undefined;
      try {
        const data = await current.data;
        bytesIn = data.length;
        try {
          result = await convert(manifest, blob, data, work);
        } catch (err) {
          status = failed('convert', err, bytesIn);
        }
      } catch (err) {
        status = failed('download', err, 0);
      }
      await uploading;
      const out = result;
      uploading = (async () => {
        if (out) {
          try {
            await io.put(blob, out);
            status = { ...base, state: 'done', finishedAt: Date.now(), ms: Math.round(performance.now() - t0), bytesIn, bytesOut: out.length };
          } catch (err) {
            status = failed('upload', err, bytesIn);
          }
        }
        await writeJsonAtomic(statusPath(dir, index), status!);
      })();
      uploading.catch(() => undefined); // handled when awaited
      current = upcoming;
    }
    await uploading;
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`slurmkit task: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
