/** A cluster's blob containers for programs: list, upload, download (the CLI's `blob` verbs have their own transfers). */
import { SlurmkitError } from '../util/errors.js';
import { ensureBlobStorage, openBlobStore, type BlobInfo, type BlobStore, type ContainerInfo } from '../storage/blob.js';

export type { BlobInfo, ContainerInfo };

const store = async (cluster: string): Promise<BlobStore> => openBlobStore(await ensureBlobStorage(cluster));

export async function containers(cluster: string): Promise<ContainerInfo[]> {
  return (await store(cluster)).listContainers();
}

export async function blobs(cluster: string, container: string, prefix?: string): Promise<BlobInfo[]> {
  return (await store(cluster)).listBlobs(container, prefix);
}

/** Creates a container; an existing one is kept (created: false). */
export async function createContainer(cluster: string, container: string): Promise<{ container: string; created: boolean }> {
  return (await store(cluster)).mk(container);
}

/** Uploads one blob, creating its container when missing. */
export async function upload(cluster: string, container: string, blob: string, data: Buffer, contentType?: string): Promise<BlobInfo> {
  const s = await store(cluster);
  await s.mk(container);
  return s.putData(container, blob, data, contentType ? { contentType } : {});
}

export async function download(cluster: string, container: string, blob: string): Promise<{ info: BlobInfo; data: Buffer }> {
  const s = await store(cluster);
  const info = await s.stat(container, blob);
  return { info, data: await s.getData(container, blob) };
}

/** A small JPEG of an image blob, `width` pixels wide at most, for a browser's thumbnails. */
export async function thumbnail(cluster: string, container: string, blob: string, width: number): Promise<Buffer> {
  const { data } = await download(cluster, container, blob);
  const { sharp } = await import('../jobs/sharp.js');
  try {
    return await sharp(data).resize({ width, height: width, fit: 'inside', withoutEnlargement: true }).jpeg({ quality: 70 }).toBuffer();
  } catch (err) {
    throw new SlurmkitError('UNSUPPORTED', `${container}/${blob} is not an image that can be shown small: ${(err as Error).message}`);
  }
}
