import { BlobSASPermissions, generateBlobSASQueryParameters, SASProtocol, StorageSharedKeyCredential } from '@azure/storage-blob';
import { ensureBlobStorage, openBlobStore } from '../storage/blob.js';
import type { DemoStorage } from './demo.js';

/** Account name and key from a connection string, when it has them (a SAS-only string has not). */
function sharedKey(connectionString: string): StorageSharedKeyCredential | undefined {
  const map = new Map(
    connectionString
      .split(';')
      .map((p) => p.trim())
      .filter((p) => p.includes('='))
      .map((p) => [p.slice(0, p.indexOf('=')), p.slice(p.indexOf('=') + 1)] as const),
  );
  const name = map.get('AccountName');
  const key = map.get('AccountKey');
  return name && key ? new StorageSharedKeyCredential(name, key) : undefined;
}

/**
 * The cluster's blob storage (started if needed) as the batch runner and the demo use it.
 * Signed URLs are for tasks, where the nodes reach the service; `signFor: 'here'` makes them
 * for this machine (the benchmark's single-process reference).
 */
export async function storageFor(cluster: string, opts: { signFor?: 'nodes' | 'here' } = {}): Promise<DemoStorage> {
  const endpoint = await ensureBlobStorage(cluster);
  const store = await openBlobStore(endpoint);
  const credential = sharedKey(await endpoint.connectionString());
  const base = ((opts.signFor ?? 'nodes') === 'nodes' ? (endpoint.nodeUrl ?? endpoint.url) : endpoint.url).replace(/\/+$/, '');
  return {
    connectionStringFile: endpoint.connectionStringFile,
    list: (container) => store.list(container),
    mk: async (container) => {
      await store.mk(container);
    },
    putData: async (container, blob, data, opts) => {
      await store.putData(container, blob, data, opts);
    },
    getData: (container, blob) => store.getData(container, blob),
    ...(credential
      ? {
          signedUrl: async (container: string, blob: string, permissions: 'r' | 'cw', expiresInSeconds: number) => {
            const sas = generateBlobSASQueryParameters(
              {
                containerName: container,
                blobName: blob,
                permissions: BlobSASPermissions.parse(permissions),
                startsOn: new Date(Date.now() - 5 * 60_000),
                expiresOn: new Date(Date.now() + expiresInSeconds * 1000),
                protocol: SASProtocol.HttpsAndHttp,
              },
              credential,
            ).toString();
            return `${base}/${encodeURIComponent(container)}/${blob.split('/').map(encodeURIComponent).join('/')}?${sas}`;
          },
        }
      : {}),
  };
}
