import { isAbsolute, join, relative, resolve } from 'node:path';
import { SlurmkitError } from '../util/errors.js';

// https://learn.microsoft.com/rest/api/storageservices/naming-and-referencing-containers--blobs--and-metadata
const CONTAINER_RULE =
  'container names are 3-63 characters: lowercase letters, digits and single hyphens, starting and ending with a letter or digit';
const CONTAINER_NAME = /^[a-z0-9](?:[a-z0-9]|-(?=[a-z0-9])){2,62}$/;
const METADATA_KEY = /^[A-Za-z_][A-Za-z0-9_]*$/;

export function isValidContainerName(name: string): boolean {
  return CONTAINER_NAME.test(name);
}

/** Throws USAGE naming the argument, before any request is made. */
export function checkContainerName(name: string, argument = 'CONTAINER'): void {
  if (isValidContainerName(name)) return;
  const suggestion = suggestContainerName(name);
  throw new SlurmkitError('USAGE', `invalid ${argument} "${name}": ${CONTAINER_RULE}`, {
    hint: suggestion ? `for example: ${suggestion}` : 'for example: data, results-2024, run-42',
  });
}

function suggestContainerName(name: string): string | undefined {
  const s = name
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, '-')
    .replace(/-{2,}/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 63)
    .replace(/-+$/, '');
  return isValidContainerName(s) ? s : undefined;
}

/** Blob names: 1-1024 characters (Azure's limit). */
export function checkBlobName(name: string, argument = 'BLOB'): void {
  if (name.length >= 1 && name.length <= 1024) return;
  throw new SlurmkitError('USAGE', `invalid ${argument}: blob names are 1-1024 characters, got ${name.length}`);
}

/** Metadata keys must be C# identifiers; values are sent as HTTP headers, so ASCII only. */
export function checkMetadata(metadata: Record<string, string>): void {
  for (const [k, v] of Object.entries(metadata)) {
    if (!METADATA_KEY.test(k)) {
      throw new SlurmkitError('USAGE', `invalid metadata key "${k}": keys are letters, digits and _, not starting with a digit`);
    }
    if (!/^[\x20-\x7e]*$/.test(v)) {
      throw new SlurmkitError('USAGE', `invalid metadata value for "${k}": values are printable ASCII`);
    }
  }
}

/**
 * The local file a blob is saved to under `dir`. Blob names come from the store, not from the
 * user: a name that would leave `dir` (`../x`, `/etc/x`) or that is only a folder marker is refused.
 */
export function localPathFor(dir: string, blob: string): string {
  const segments = blob.split('/');
  if (blob.startsWith('/') || blob.endsWith('/') || segments.some((s) => s === '' || s === '.' || s === '..' || s.includes('\0'))) {
    throw new SlurmkitError('CONFLICT', `blob "${blob}" cannot be saved as a file: its name has an empty, "." or ".." path segment`, {
      hint: 'download it on its own with `get CONTAINER BLOB` after renaming it, or download other blobs with --prefix',
    });
  }
  const target = resolve(dir, ...segments);
  const rel = relative(resolve(dir), target);
  if (rel === '' || rel.startsWith('..') || isAbsolute(rel)) {
    throw new SlurmkitError('CONFLICT', `blob "${blob}" would be saved outside ${dir}`);
  }
  return join(resolve(dir), rel);
}
