/** The files a batch shares between the host runner and its Slurm array tasks. */
import { readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

export type BatchMode = { builtin: 'grayscale' } | { command: string[] };

export interface BatchBlob {
  /** Stable position in the batch; names the status file. */
  index: number;
  name: string;
  etag: string;
  size: number;
  contentType?: string;
  /** Signed URLs for this blob alone (the manifest is root-only: they are credentials). */
  getUrl?: string;
  putUrl?: string;
}

export interface Manifest {
  batchId: string;
  cluster: string;
  input: string;
  output: string;
  mode: BatchMode;
  /** Host path (root-only) of the file holding the storage connection string. */
  connectionStringFile: string;
  blobs: BatchBlob[];
}

/** One submission of an array job: which blobs it covers and over how many tasks. */
export interface Attempt {
  attempt: number;
  tasks: number;
  /** Largest first: tasks claim in this order, so the big blobs do not come last. */
  indices: number[];
  jobId?: string;
}

export interface BlobStatus {
  index: number;
  name: string;
  state: 'done' | 'failed';
  reason?: string;
  /** A storage error rather than a bad input: the runner tries the blob again. */
  retryable?: boolean;
  node: string;
  attempt: number;
  /** Array task that handled the blob, and when (epoch ms) that task started. */
  task?: number;
  taskStartedAt?: number;
  /** When (epoch ms) the blob's status was settled. */
  finishedAt?: number;
  ms: number;
  bytesIn: number;
  bytesOut: number;
}

export const manifestPath = (dir: string) => join(dir, 'manifest.json');
export const attemptPath = (dir: string, attempt: number) => join(dir, `attempt-${attempt}.json`);
export const statusDir = (dir: string) => join(dir, 'status');
export const statusPath = (dir: string, index: number) => join(statusDir(dir), `${index}.json`);
export const logDir = (dir: string) => join(dir, 'logs');

/** Written whole or not at all: readers never see half a file. */
export async function writeJsonAtomic(path: string, value: unknown): Promise<void> {
  const tmp = `${path}.${process.pid}.tmp`;
  await writeFile(tmp, `${JSON.stringify(value, null, 2)}\n`, { mode: 0o600 });
  await rename(tmp, path);
}

export async function readJson<T>(path: string): Promise<T> {
  return JSON.parse(await readFile(path, 'utf8')) as T;
}

/**
 * Folder where an attempt's tasks claim blobs: a task takes a blob by creating its file there
 * (O_EXCL), so tasks that start early or get small blobs take more, and each blob goes to one task.
 */
export const claimDir = (dir: string, attempt: number) => join(dir, 'claims', `attempt-${attempt}`);
export const claimPath = (dir: string, attempt: number, index: number) => join(claimDir(dir, attempt), String(index));

/** Azure metadata values must be plain ASCII; etags come quoted. */
export const etagTag = (etag: string): string => etag.replace(/[^A-Za-z0-9]/g, '');
/** Metadata key on an output blob naming the input version it was made from. */
export const SOURCE_KEY = 'slurmkitsource';
