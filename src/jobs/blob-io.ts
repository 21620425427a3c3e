/**
 * A task's blob transfers over signed URLs with Node's own HTTP client: no account key and no
 * Azure SDK in the task (loading the SDK costs each task ~0.4 s of CPU, and `fetch`/undici more
 * to load than a whole blob takes to move). The benchmark's single-process reference uses the
 * same code, so the two do the same work.
 */
import { etagTag, SOURCE_KEY, type BatchBlob } from './manifest.js';

export interface BlobIo {
  get(blob: BatchBlob): Promise<Buffer>;
  put(blob: BatchBlob, data: Buffer): Promise<void>;
}

/** A few retries: transient errors of the storage service should not fail a blob. */
export async function withRetries<T>(what: string, fn: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (err) {
      if (attempt >= 4) throw new Error(`${what}: ${(err as Error).message}`);
      await new Promise((r) => setTimeout(r, 200 * attempt));
    }
  }
}

/** One HTTP(S) request; resolves with the body of a 2xx answer. */
export async function request(url: string, method: 'GET' | 'PUT', body?: Buffer, headers: Record<string, string> = {}): Promise<Buffer> {
  const mod = url.startsWith('https:') ? await import('node:https') : await import('node:http');
  return new Promise((resolve, reject) => {
    const req = mod.request(url, { method, headers: { ...headers, ...(body ? { 'content-length': String(body.length) } : {}) }, timeout: 120_000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const status = res.statusCode ?? 0;
        if (status >= 200 && status < 300) resolve(Buffer.concat(chunks));
        else reject(new Error(`HTTP ${status} ${res.statusMessage ?? ''}`.trim()));
      });
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error('no answer within 120 s')));
    req.on('error', reject);
    req.end(body);
  });
}

/** Download from a blob's `getUrl`, upload to its `putUrl` with the source's etag as metadata. */
export function signedUrlIo(): BlobIo {
  return {
    get: (blob) => withRetries('download', () => request(blob.getUrl!, 'GET')),
    put: (blob, data) =>
      withRetries('upload', async () => {
        await request(blob.putUrl!, 'PUT', data, {
          'x-ms-blob-type': 'BlockBlob',
          [`x-ms-meta-${SOURCE_KEY}`]: etagTag(blob.etag),
          'content-type': blob.contentType ?? 'application/octet-stream',
        });
      }),
  };
}
