import { ensureBlobStorage, openBlobStore } from '../storage/blob.js';
import type { DemoStorage } from './demo.js';

/** The cluster's blob storage (started if needed) as the batch runner and the demo use it. */
export async function storageFor(cluster: string): Promise<DemoStorage> {
  const endpoint = await ensureBlobStorage(cluster);
  const store = await openBlobStore(endpoint);
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
  };
}
