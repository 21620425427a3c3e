/** Blob storage as a head service: what the lifecycle runs for clusters whose spec asks for it. */
import type { HeadService } from '../cluster/services.js';
import { ensureBlobStorage, resumeBlobStorage, startSpecBlobStorage } from './blob.js';
import { readConnectionStringFile } from './connection-string.js';
import { AZURITE_HEAD_NEEDS } from './azurite.js';

export const blobService: HeadService = {
  name: 'blob storage',
  async prepare(config) {
    // A real account's connection string file is checked before anything is made.
    if (config.storage.blob === 'azure' && config.storage.connectionStringFile) await readConnectionStringFile(config.storage.connectionStringFile);
  },
  wanted: (state) => (state.storage?.blob ?? 'none') !== 'none',
  headNeeds: async () => AZURITE_HEAD_NEEDS,
  // Azurite takes about a second to answer: launched only; the first command that needs it waits.
  boot: async (state) => void (await startSpecBlobStorage(state.name, { wait: false })),
  waitReady: async (state) => void (await ensureBlobStorage(state.name)),
  resume: async (state, progress) => void (await resumeBlobStorage(state.name, { progress })),
};
