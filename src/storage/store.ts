import { randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import {
  AccountSASPermissions,
  AccountSASResourceTypes,
  AccountSASServices,
  BlobClient,
  BlobServiceClient,
  ContainerClient,
  generateAccountSASQueryParameters,
  RestError,
  SASProtocol,
  StorageSharedKeyCredential,
  type StoragePipelineOptions,
} from '@azure/storage-blob';
import { SlurmkitError } from '../util/errors.js';
import { parseConnectionString, secretsOf } from './connection-string.js';
import { mapBlobError, type ErrorContext, type OperationContext } from './errors.js';
import { checkBlobName, checkContainerName, checkMetadata, checkNewBlobName } from './names.js';
import type { BlobEndpoint, BlobInfo, ContainerInfo } from './types.js';
import { ensureSecretDir, writeSecretFile } from './secrets.js';

/**
 * How long the SDK may try. Its defaults retry for minutes; a wrong endpoint must fail in
 * seconds, so metadata calls get short tries, and only data transfers get long ones.
 */
export type ClientProfile = 'probe' | 'control' | 'data';
const RETRY: Record<ClientProfile, NonNullable<StoragePipelineOptions['retryOptions']>> = {
  probe: { maxTries: 1, tryTimeoutInMs: 2_000 },
  control: { maxTries: 2, tryTimeoutInMs: 8_000, retryDelayInMs: 200, maxRetryDelayInMs: 1_000 },
  data: { maxTries: 3, tryTimeoutInMs: 300_000, retryDelayInMs: 500, maxRetryDelayInMs: 4_000 },
};

export function serviceClient(connectionString: string, profile: ClientProfile): BlobServiceClient {
  return BlobServiceClient.fromConnectionString(connectionString, {
    retryOptions: RETRY[profile],
    userAgentOptions: { userAgentPrefix: 'slurmkit' },
  });
}

/**
 * 'ok': the service took the credentials; 'rejected': a blob service answered but refused them;
 * 'foreign': something answered that is not a blob service for this account; 'unreachable': nothing answered.
 */
export type ProbeResult = 'ok' | 'unreachable' | 'rejected' | 'foreign';

/** One authenticated list-containers call, the cheapest request every account allows. */
export async function probeService(connectionString: string, profile: ClientProfile = 'probe'): Promise<{ result: ProbeResult; error?: unknown }> {
  try {
    await serviceClient(connectionString, profile).listContainers().byPage({ maxPageSize: 1 }).next();
    return { result: 'ok' };
  } catch (error) {
    if (!(error instanceof RestError) || error.statusCode === undefined) return { result: 'unreachable', error };
    if (error.statusCode === 401 || error.statusCode === 403) return { result: 'rejected', error };
    return { result: 'foreign', error };
  }
}

export interface PutOptions {
  metadata?: Record<string, string>;
  contentType?: string;
  /** Bytes of this blob sent so far. */
  onProgress?: (bytes: number) => void;
  signal?: AbortSignal;
}

export interface GetOptions {
  /** Bytes of this blob received so far. */
  onProgress?: (bytes: number) => void;
  signal?: AbortSignal;
}

const iso = (d: Date | undefined): string => (d ? d.toISOString() : '');

/**
 * The SDK puts a blob name into a URL path, where "." and ".." segments are resolved away:
 * getBlobClient("a/../b") addresses blob "b", and "../x" leaves the container. A name with such
 * segments (which the SDK or other tools can store) is sent as one segment with "/" escaped, so
 * stat, get and rm reach the blob they name. Only a name that is all "." or ".." stays unreachable.
 */
class LiteralNames extends ContainerClient {
  static blobClient(container: ContainerClient, blob: string): BlobClient {
    const segments = blob.split('/');
    if (!segments.some((s) => s === '.' || s === '..')) return container.getBlobClient(blob);
    if (blob === '.' || blob === '..') {
      throw new SlurmkitError('USAGE', `a blob named ${JSON.stringify(blob)} cannot be addressed: URLs resolve it away`, { hint: 'use another tool, such as the Azure portal' });
    }
    return new BlobClient(`${container.url}/${encodeURIComponent(blob)}`, (container as LiteralNames).pipeline);
  }
}

/**
 * A cluster's blob storage with slurmkit's error mapping: names are checked before any request,
 * a missing container is NOT_FOUND with the command that creates it, bad credentials or an
 * endpoint that does not answer are PRECONDITION, and no message carries a secret.
 */
export class BlobStore {
  private readonly ctx: ErrorContext;

  constructor(
    readonly endpoint: Pick<BlobEndpoint, 'kind' | 'cluster' | 'url' | 'connectionStringFile'>,
    private readonly control: BlobServiceClient,
    private readonly data: BlobServiceClient,
    secrets: readonly string[],
  ) {
    this.ctx = { cluster: endpoint.cluster, kind: endpoint.kind, url: endpoint.url, secrets };
  }

  static fromConnectionString(endpoint: Pick<BlobEndpoint, 'kind' | 'cluster' | 'url' | 'connectionStringFile'>, connectionString: string): BlobStore {
    return new BlobStore(endpoint, serviceClient(connectionString, 'control'), serviceClient(connectionString, 'data'), secretsOf(connectionString));
  }

  /** For jobs: the root-only file with the connection string, readable from every node. */
  get connectionStringFile(): string {
    return this.endpoint.connectionStringFile;
  }

  private async call<T>(op: OperationContext, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      throw mapBlobError(err, this.ctx, op);
    }
  }

  /** Fails PRECONDITION unless the service answers and takes the credentials (a SAS without list rights passes). */
  async verify(): Promise<void> {
    await this.call({ what: 'list containers' }, async () => {
      try {
        await this.control.listContainers().byPage({ maxPageSize: 1 }).next();
      } catch (err) {
        const sasWithoutList = err instanceof RestError && err.code === 'AuthorizationPermissionMismatch' && this.ctx.secrets.length > 0;
        if (!sasWithoutList) throw err;
      }
    });
  }

  /** Creates a container; an existing one is kept (created: false). */
  async mk(container: string): Promise<{ container: string; created: boolean }> {
    checkContainerName(container, 'container');
    const r = await this.call({ what: `create container ${container}`, container }, () =>
      this.control.getContainerClient(container).createIfNotExists(),
    );
    return { container, created: r.succeeded };
  }

  async listContainers(prefix?: string): Promise<ContainerInfo[]> {
    return this.call({ what: 'list containers' }, async () => {
      const out: ContainerInfo[] = [];
      for await (const c of this.control.listContainers({ includeMetadata: true, ...(prefix ? { prefix } : {}) })) {
        out.push({ name: c.name, lastModified: iso(c.properties.lastModified), etag: c.properties.etag, metadata: c.metadata ?? {} });
      }
      return out;
    });
  }

  async listBlobs(container: string, prefix?: string): Promise<BlobInfo[]> {
    checkContainerName(container, 'container');
    return this.call({ what: `list container ${container}`, container }, async () => {
      const out: BlobInfo[] = [];
      for await (const b of this.control.getContainerClient(container).listBlobsFlat({ includeMetadata: true, ...(prefix ? { prefix } : {}) })) {
        out.push({
          name: b.name,
          size: b.properties.contentLength ?? 0,
          lastModified: iso(b.properties.lastModified),
          etag: b.properties.etag,
          contentType: b.properties.contentType,
          metadata: b.metadata ?? {},
        });
      }
      return out;
    });
  }

  /** The blobs of a container (same as listBlobs). */
  list(container: string, prefix?: string): Promise<BlobInfo[]> {
    return this.listBlobs(container, prefix);
  }

  /** Containers (no container given) or the blobs of one container, optionally under a name prefix. */
  ls(container?: undefined, prefix?: string): Promise<ContainerInfo[]>;
  ls(container: string, prefix?: string): Promise<BlobInfo[]>;
  ls(container?: string, prefix?: string): Promise<ContainerInfo[] | BlobInfo[]> {
    return container === undefined ? this.listContainers(prefix) : this.listBlobs(container, prefix);
  }

  async stat(container: string, blob: string): Promise<BlobInfo> {
    checkContainerName(container, 'container');
    checkBlobName(blob, 'blob');
    const p = await this.call({ what: `read properties of ${blob}`, container, blob }, () =>
      LiteralNames.blobClient(this.control.getContainerClient(container), blob).getProperties(),
    );
    return {
      name: blob,
      size: p.contentLength ?? 0,
      lastModified: iso(p.lastModified),
      etag: p.etag ?? '',
      contentType: p.contentType,
      metadata: p.metadata ?? {},
    };
  }

  /** Whether a container (or a blob in it) exists. */
  async exists(container: string, blob?: string): Promise<boolean> {
    checkContainerName(container, 'container');
    if (blob !== undefined) checkBlobName(blob, 'blob');
    const c = this.control.getContainerClient(container);
    return this.call({ what: `check ${blob ?? container}`, container, ...(blob !== undefined ? { blob } : {}) }, () =>
      blob === undefined ? c.exists() : LiteralNames.blobClient(c, blob).exists(),
    );
  }

  async putFile(container: string, blob: string, path: string, opts: PutOptions = {}): Promise<BlobInfo> {
    checkContainerName(container, 'container');
    checkNewBlobName(blob, 'blob');
    if (opts.metadata) checkMetadata(opts.metadata);
    const r = await this.call({ what: `upload ${blob}`, container, blob, signal: opts.signal }, () =>
      this.data
        .getContainerClient(container)
        .getBlockBlobClient(blob)
        .uploadFile(path, {
          ...(opts.metadata ? { metadata: opts.metadata } : {}),
          ...(opts.contentType ? { blobHTTPHeaders: { blobContentType: opts.contentType } } : {}),
          ...(opts.onProgress ? { onProgress: (e: { loadedBytes: number }) => opts.onProgress!(e.loadedBytes) } : {}),
          ...(opts.signal ? { abortSignal: opts.signal } : {}),
          concurrency: 4,
        }),
    );
    const size = (await stat(path)).size;
    return { name: blob, size, lastModified: iso(r.lastModified), etag: r.etag ?? '', contentType: opts.contentType, metadata: opts.metadata ?? {} };
  }

  async putData(container: string, blob: string, data: Buffer | string, opts: Omit<PutOptions, 'onProgress'> = {}): Promise<BlobInfo> {
    checkContainerName(container, 'container');
    checkNewBlobName(blob, 'blob');
    if (opts.metadata) checkMetadata(opts.metadata);
    const body = typeof data === 'string' ? Buffer.from(data) : data;
    const r = await this.call({ what: `upload ${blob}`, container, blob, signal: opts.signal }, () =>
      this.data
        .getContainerClient(container)
        .getBlockBlobClient(blob)
        .uploadData(body, {
          ...(opts.metadata ? { metadata: opts.metadata } : {}),
          ...(opts.contentType ? { blobHTTPHeaders: { blobContentType: opts.contentType } } : {}),
          ...(opts.signal ? { abortSignal: opts.signal } : {}),
        }),
    );
    return { name: blob, size: body.length, lastModified: iso(r.lastModified), etag: r.etag ?? '', contentType: opts.contentType, metadata: opts.metadata ?? {} };
  }

  /**
   * Downloads into a temporary file next to `path` and renames it into place once complete and
   * of the announced length, so `path` is never a half-written file: it is either the old file
   * (or absent) or the whole blob. The temporary file is removed on any failure.
   */
  async getToFile(container: string, blob: string, path: string, opts: GetOptions = {}): Promise<{ bytes: number }> {
    checkContainerName(container, 'container');
    checkBlobName(blob, 'blob');
    await mkdir(dirname(path), { recursive: true });
    const tmp = join(dirname(path), `.${basename(path)}.slurmkit-${randomBytes(4).toString('hex')}.part`);
    try {
      const res = await this.call({ what: `download ${blob}`, container, blob, signal: opts.signal }, () =>
        LiteralNames.blobClient(this.data.getContainerClient(container), blob).download(0, undefined, {
            maxRetryRequests: 3,
            ...(opts.onProgress ? { onProgress: (e: { loadedBytes: number }) => opts.onProgress!(e.loadedBytes) } : {}),
            ...(opts.signal ? { abortSignal: opts.signal } : {}),
          }),
      );
      const body = res.readableStreamBody;
      if (!body) throw new SlurmkitError('INTERNAL', `download of ${blob} returned no body`);
      await this.call({ what: `download ${blob}`, container, blob, signal: opts.signal }, () =>
        pipeline(body, createWriteStream(tmp, { flags: 'wx' }), ...(opts.signal ? [{ signal: opts.signal }] : [])),
      );
      const bytes = (await stat(tmp)).size;
      if (res.contentLength !== undefined && bytes !== res.contentLength) {
        throw new SlurmkitError('COMMAND_FAILED', `download of ${blob} ended after ${bytes} of ${res.contentLength} bytes`, { hint: 'try again' });
      }
      await rename(tmp, path).catch((err: NodeJS.ErrnoException) => {
        throw new SlurmkitError('CONFLICT', `cannot save blob "${blob}" as ${path}: ${err.code ?? err.message}`, {
          hint: err.code === 'EISDIR' ? 'a folder of that name is in the way; pick another -o folder' : undefined,
        });
      });
      return { bytes };
    } finally {
      await rm(tmp, { force: true });
    }
  }

  async getData(container: string, blob: string, opts: { signal?: AbortSignal } = {}): Promise<Buffer> {
    checkContainerName(container, 'container');
    checkBlobName(blob, 'blob');
    return this.call({ what: `download ${blob}`, container, blob, signal: opts.signal }, () =>
      LiteralNames.blobClient(this.data.getContainerClient(container), blob).downloadToBuffer(0, undefined, opts.signal ? { abortSignal: opts.signal } : {}),
    );
  }

  /**
   * Deletes a blob (with its snapshots), or a whole container with everything in it.
   * Something missing is NOT_FOUND, unless `missingOk`, which makes it idempotent.
   */
  async rm(container: string, blob?: string, opts: { missingOk?: boolean } = {}): Promise<{ deleted: boolean }> {
    checkContainerName(container, 'container');
    if (blob !== undefined) checkBlobName(blob, 'blob');
    const c = this.control.getContainerClient(container);
    const op = { what: `delete ${blob ?? `container ${container}`}`, container, ...(blob !== undefined ? { blob } : {}) };
    const r = await this.call(op, () =>
      blob === undefined ? c.deleteIfExists() : LiteralNames.blobClient(c, blob).deleteIfExists({ deleteSnapshots: 'include' }),
    );
    if (!r.succeeded && !opts.missingOk) {
      // deleteIfExists of a blob also lands here when its container is missing; say which.
      const containerMissing = blob === undefined || r.errorCode === 'ContainerNotFound';
      const missing = new RestError('not found', { statusCode: 404, code: containerMissing ? 'ContainerNotFound' : 'BlobNotFound' });
      throw mapBlobError(missing, this.ctx, containerMissing ? { what: op.what, container } : op);
    }
    return { deleted: r.succeeded };
  }
}

/** Opens a client for an endpoint; with verify (default), fails now if the service does not answer or refuses the credentials. */
export async function openStore(endpoint: BlobEndpoint, opts: { verify?: boolean } = {}): Promise<BlobStore> {
  const cs = await endpoint.connectionString();
  parseConnectionString(cs, endpoint.connectionStringFile);
  await writeJobsConnectionString(endpoint.connectionStringFile, cs, endpoint.nodeUrl);
  const store = BlobStore.fromConnectionString(endpoint, cs);
  if (opts.verify ?? true) await store.verify();
  return store;
}

/**
 * The connection string jobs get: an account SAS (blob service, every container and blob,
 * read, write, delete, list, add, create) valid for `days`, so the account key never leaves
 * the head and the host. A connection string without a key is returned as it is.
 */
export function sasConnectionString(connectionString: string, days = 30): string {
  const map = new Map(
    connectionString
      .split(';')
      .filter((p) => p.includes('='))
      .map((p) => [p.slice(0, p.indexOf('=')).trim(), p.slice(p.indexOf('=') + 1).trim()] as const),
  );
  const name = map.get('AccountName');
  const key = map.get('AccountKey');
  if (!name || !key) return connectionString;
  const endpoint = map.get('BlobEndpoint') ?? `${map.get('DefaultEndpointsProtocol') ?? 'https'}://${name}.blob.${map.get('EndpointSuffix') ?? 'core.windows.net'}`;
  const sas = generateAccountSASQueryParameters(
    {
      services: AccountSASServices.parse('b').toString(),
      resourceTypes: AccountSASResourceTypes.parse('sco').toString(),
      permissions: AccountSASPermissions.parse('rwdlac'),
      startsOn: new Date(Date.now() - 5 * 60_000),
      expiresOn: new Date(Date.now() + days * 86_400_000),
      protocol: SASProtocol.HttpsAndHttp,
    },
    new StorageSharedKeyCredential(name, key),
  ).toString();
  return `BlobEndpoint=${endpoint};SharedAccessSignature=${sas}`;
}

/** Writes (or renews, a week before it ends or when the account changed) the jobs' SAS connection string. */
async function writeJobsConnectionString(file: string, connectionString: string, nodeUrl?: string): Promise<void> {
  const current = await readFile(file, 'utf8').catch(() => '');
  // Jobs reach the service where the nodes do.
  const sas = sasConnectionString(connectionString);
  const wanted = nodeUrl ? sas.replace(/BlobEndpoint=[^;]+/, `BlobEndpoint=${nodeUrl}`) : sas;
  const endpointOf = (cs: string) => /BlobEndpoint=([^;]+)/.exec(cs)?.[1] ?? cs;
  const expiry = Date.parse(new URLSearchParams(/SharedAccessSignature=([^;]+)/.exec(current)?.[1] ?? '').get('se') ?? '');
  const fresh = current !== '' && endpointOf(current) === endpointOf(wanted) && (wanted === connectionString ? current === wanted : expiry > Date.now() + 7 * 86_400_000);
  if (fresh) return;
  await ensureSecretDir(dirname(file));
  await writeSecretFile(file, wanted);
}
