import { readFile, stat } from 'node:fs/promises';
import { SlurmkitError } from '../util/errors.js';

/** What slurmkit needs from a connection string; the secret parts stay in the string itself. */
export interface ConnectionInfo {
  /** Base URL of the blob service, without credentials or query. */
  blobEndpoint: string;
  accountName: string | undefined;
  auth: 'key' | 'sas';
}

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const ACCOUNT_NAME = /^[a-z0-9]{3,24}$/;

/** `Key=Value;...` into a map; a value may itself hold `=` (base64 keys do). */
function parts(text: string): { map: Map<string, string>; problems: string[] } {
  const map = new Map<string, string>();
  const problems: string[] = [];
  text
    .split(';')
    .map((p) => p.trim())
    .filter((p) => p !== '')
    .forEach((part, i) => {
      const eq = part.indexOf('=');
      if (eq <= 0) problems.push(`part ${i + 1} is not Key=Value`);
      else map.set(part.slice(0, eq).trim(), part.slice(eq + 1).trim());
    });
  return { map, problems };
}

/**
 * Validates a connection string. Errors name the keys at fault, never a value: the string
 * holds an account key or a SAS signature.
 * https://learn.microsoft.com/azure/storage/common/storage-configure-connection-string
 */
export function parseConnectionString(text: string, source: string): ConnectionInfo {
  const { map, problems } = parts(text);
  const get = (k: string): string | undefined => map.get(k) || undefined;
  if (/^true$/i.test(get('UseDevelopmentStorage') ?? '')) {
    problems.push('UseDevelopmentStorage=true points at an emulator on 127.0.0.1 of this machine, which jobs cannot reach');
  }
  const accountName = get('AccountName');
  const accountKey = get('AccountKey');
  const sas = get('SharedAccessSignature');
  const protocol = get('DefaultEndpointsProtocol') ?? 'https';
  if (!['http', 'https'].includes(protocol)) problems.push('DefaultEndpointsProtocol must be http or https');
  if (accountName !== undefined && !ACCOUNT_NAME.test(accountName)) problems.push('AccountName must be 3-24 lowercase letters and digits');
  if (accountKey !== undefined && !BASE64.test(accountKey)) problems.push('AccountKey is not base64');
  if (accountKey !== undefined && accountName === undefined) problems.push('AccountKey is given without AccountName');
  if (accountKey === undefined && sas === undefined) problems.push('neither AccountName+AccountKey nor SharedAccessSignature is given');

  let blobEndpoint = get('BlobEndpoint');
  if (blobEndpoint !== undefined) {
    let url: URL | undefined;
    try {
      url = new URL(blobEndpoint);
    } catch {
      /* reported below */
    }
    if (!url || !['http:', 'https:'].includes(url.protocol) || url.search !== '') problems.push('BlobEndpoint is not an http(s) URL without a query');
    blobEndpoint = blobEndpoint.replace(/\/+$/, '');
  } else if (accountName !== undefined) {
    blobEndpoint = `${protocol}://${accountName}.blob.${get('EndpointSuffix') ?? 'core.windows.net'}`;
  } else if (sas !== undefined) {
    problems.push('SharedAccessSignature needs BlobEndpoint (or AccountName) to say where the account is');
  }

  if (problems.length > 0 || blobEndpoint === undefined) {
    throw new SlurmkitError('SPEC_INVALID', `${source} is not a valid Azure Storage connection string`, {
      details: problems,
      hint:
        `set ${source} to the string from the Azure portal (Storage account > Access keys), ` +
        'e.g. DefaultEndpointsProtocol=https;AccountName=NAME;AccountKey=KEY;EndpointSuffix=core.windows.net, ' +
        `or unset ${source} to use the cluster's own Azurite`,
    });
  }
  return { blobEndpoint, accountName, auth: accountKey !== undefined ? 'key' : 'sas' };
}

export function formatConnectionString(o: { accountName: string; accountKey: string; blobEndpoint: string }): string {
  return `DefaultEndpointsProtocol=http;AccountName=${o.accountName};AccountKey=${o.accountKey};BlobEndpoint=${o.blobEndpoint};`;
}

/** The secret values of a connection string, to scrub from any message that might quote them. */
export function secretsOf(connectionString: string): string[] {
  const { map } = parts(connectionString);
  return ['AccountKey', 'SharedAccessSignature'].map((k) => map.get(k)).filter((v): v is string => !!v && v.length >= 4);
}

/** Removes secrets, and the query of any URL (a SAS signature travels there), from text shown to people. */
export function redact(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const s of secrets) out = out.split(s).join('***');
  return out.replace(/(https?:\/\/[^\s?"']+)\?[^\s"']*/g, '$1?***');
}

/**
 * The connection string in the file a spec names (storage.connectionStringFile): it must be a
 * regular file only its owner can read, holding a valid string. Errors name the field, never
 * the string.
 */
export async function readConnectionStringFile(file: string): Promise<string> {
  const field = `storage.connectionStringFile (${file})`;
  const st = await stat(file).catch((err: NodeJS.ErrnoException) => {
    throw new SlurmkitError('SPEC_INVALID', `${field}: ${err.code === 'ENOENT' ? 'no such file' : err.message}`, {
      hint: `write the account's connection string into it: umask 077; cat > ${file}`,
    });
  });
  if (!st.isFile()) throw new SlurmkitError('SPEC_INVALID', `${field} is not a regular file`, { hint: 'name the file that holds the connection string' });
  if ((st.mode & 0o077) !== 0) {
    throw new SlurmkitError('SPEC_INVALID', `${field} can be read by others (mode ${(st.mode & 0o777).toString(8)}); it holds a secret`, {
      hint: `chmod 600 ${file}`,
    });
  }
  const text = (await readFile(file, 'utf8')).trim();
  parseConnectionString(text, field);
  return text;
}
