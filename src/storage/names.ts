import { isAbsolute, join, relative, resolve, sep } from 'node:path';
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
 * Why a blob name cannot be a file path relative to a folder, or undefined when it can.
 * Azure takes nearly any name ("../x", "/etc/x", "a//b"); a file system does not.
 */
export function unsafePathReason(name: string): string | undefined {
  if (name.startsWith('/')) return 'it starts with "/"';
  if (name.endsWith('/')) return 'it ends with "/" (a folder marker)';
  if (name.includes('\0')) return 'it contains a NUL character';
  const segments = name.split('/');
  if (segments.some((s) => s === '')) return 'it has an empty path segment ("//")';
  if (segments.some((s) => s === '.' || s === '..')) return 'it has a "." or ".." path segment';
  return undefined;
}

const RELATIVE_NAME_HINT = 'blob names are relative paths such as results/run-1/out.txt: no leading or trailing "/", no "//", no "." or ".." segments';

/**
 * For names slurmkit is asked to create: a name that `get -o DIR` could not save inside DIR is
 * refused (USAGE naming the argument) before any request, so slurmkit never makes such a blob.
 */
export function checkNewBlobName(name: string, argument = 'BLOB'): void {
  checkBlobName(name, argument);
  // Azure (and Azurite) store "a\\b" as "a/b": the blob would not come back under its name.
  const why = unsafePathReason(name) ?? (name.includes('\\') ? 'it contains "\\", which Azure Storage turns into "/"' : undefined);
  if (why) throw new SlurmkitError('USAGE', `invalid ${argument} ${JSON.stringify(name)}: ${why}`, { hint: RELATIVE_NAME_HINT });
}

/**
 * The local file a blob is saved to under `dir`. Blob names come from the store, not from the
 * user: a name that would leave `dir` (`../x`, `/etc/x`) or that is only a folder marker is refused.
 */
export function localPathFor(dir: string, blob: string): string {
  const why = unsafePathReason(blob);
  if (why) {
    throw new SlurmkitError('CONFLICT', `blob ${JSON.stringify(blob)} cannot be saved as a file under ${dir}: ${why}`, {
      hint: 'download other blobs with --prefix, or delete this one with `rm CONTAINER BLOB`',
    });
  }
  const segments = blob.split('/');
  const target = resolve(dir, ...segments);
  const rel = relative(resolve(dir), target);
  // "..x" is a fine file name: only a whole ".." segment climbs out.
  if (rel === '' || rel === '..' || rel.startsWith(`..${sep}`) || isAbsolute(rel)) {
    throw new SlurmkitError('CONFLICT', `blob ${JSON.stringify(blob)} would be saved outside ${dir}`);
  }
  return join(resolve(dir), rel);
}
