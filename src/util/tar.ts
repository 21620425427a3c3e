/** A tar archive in memory, from entries (tar-stream): for putting files into nodes. */
import tar from 'tar-stream';

export interface TarEntry {
  /** Path inside the archive, without a leading slash. */
  name: string;
  type?: 'file' | 'directory' | 'symlink';
  mode: number;
  uid?: number;
  gid?: number;
  mtime?: Date;
  content?: string | Buffer;
  linkname?: string;
}

export async function packTar(entries: TarEntry[]): Promise<Buffer> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  pack.on('data', (c: unknown) => void chunks.push(c as Buffer));
  const done = new Promise<void>((resolve, reject) => {
    pack.on('end', () => resolve());
    pack.on('error', reject);
  });
  for (const { content, ...header } of entries) {
    if (content !== undefined) pack.entry(header, content);
    else pack.entry(header);
  }
  pack.finalize();
  await done;
  return Buffer.concat(chunks);
}
