import { RestError } from '@azure/storage-blob';
import { SlurmkitError } from '../util/errors.js';
import { redact } from './connection-string.js';

/** Who is being talked to, so errors can say where and how to fix it. */
export interface ErrorContext {
  cluster: string;
  kind: 'azurite' | 'azure';
  /** The blob service URL (no credentials). */
  url: string;
  /** Values to scrub from anything quoted from the SDK. */
  secrets: readonly string[];
}

export interface OperationContext {
  /** What was attempted, for people: "list containers", "upload a.txt". */
  what: string;
  container?: string;
  blob?: string;
  /** The caller's signal: an abort it asked for is passed through, not reported as a failure. */
  signal?: AbortSignal | undefined;
}

const AUTH_CODES = new Set([
  'AuthenticationFailed',
  'AuthorizationFailure',
  'AuthorizationPermissionMismatch',
  'AuthorizationResourceTypeMismatch',
  'AuthorizationServiceMismatch',
  'AuthorizationSourceIPMismatch',
  'AuthorizationProtocolMismatch',
  'InvalidAuthenticationInfo',
]);

export function isAbort(err: unknown): boolean {
  return err instanceof Error && (err.name === 'AbortError' || (err as NodeJS.ErrnoException).code === 'ABORT_ERR');
}

/**
 * Maps an SDK error to a SlurmkitError with a stable code and a hint, once for every operation.
 * Nothing the SDK says is shown without scrubbing the key and any SAS signature out of it.
 */
export function mapBlobError(err: unknown, ctx: ErrorContext, op: OperationContext): unknown {
  if (err instanceof SlurmkitError) return err;
  if (isAbort(err) && op.signal?.aborted) return err;
  const clean = (s: string): string => redact(s, ctx.secrets);
  const status = err instanceof RestError ? err.statusCode : undefined;
  const code = (err as { code?: unknown })?.code;
  const codeText = typeof code === 'string' ? code : undefined;
  const firstLine = clean(String((err as Error)?.message ?? err).split('\n')[0] ?? '');
  const where = `blob storage at ${ctx.url}`;
  const fixAccess =
    ctx.kind === 'azurite'
      ? `is the cluster running? slurmkit start ${ctx.cluster}`
      : 'check BlobEndpoint/AccountName in AZURE_STORAGE_CONNECTION_STRING and the network, or unset it to use the cluster\'s own Azurite';
  const mk = op.container ? `create it: slurmkit blob ${ctx.cluster} mk ${op.container}` : undefined;

  if (codeText === 'ContainerNotFound' || (status === 404 && op.container !== undefined && op.blob === undefined)) {
    return new SlurmkitError('NOT_FOUND', `container "${op.container ?? '?'}" does not exist`, mk ? { hint: mk } : {});
  }
  if (codeText === 'BlobNotFound' || (status === 404 && op.blob !== undefined)) {
    return new SlurmkitError('NOT_FOUND', `blob "${op.blob ?? '?'}" does not exist in container "${op.container ?? '?'}"`, {
      hint: `see what is there: slurmkit blob ${ctx.cluster} ls ${op.container ?? ''}`.trimEnd(),
    });
  }
  if (status === 404) {
    // Listing containers never finds nothing: whatever answered is not this account's blob service.
    return new SlurmkitError('PRECONDITION', `${where} is not an Azure blob service for this account (HTTP 404 to ${op.what})`, { hint: fixAccess });
  }
  if (status === 401 || status === 403 || (codeText !== undefined && AUTH_CODES.has(codeText))) {
    const detail = [status, codeText].filter((x) => x !== undefined).join(' ');
    return new SlurmkitError('PRECONDITION', `${where} refused to ${op.what} (${detail})`, {
      hint:
        ctx.kind === 'azurite'
          ? `the cluster's Azurite does not accept the cluster's key; restart it: slurmkit stop ${ctx.cluster} && slurmkit start ${ctx.cluster}`
          : 'check AccountKey (or the SAS token, its permissions and expiry) in AZURE_STORAGE_CONNECTION_STRING',
    });
  }
  if (codeText === 'ContainerBeingDeleted') {
    return new SlurmkitError('CONFLICT', `container "${op.container}" is being deleted`, { hint: 'wait a few seconds, then try again' });
  }
  if (codeText === 'ContainerAlreadyExists' || codeText === 'BlobAlreadyExists') {
    return new SlurmkitError('CONFLICT', `${op.blob === undefined ? `container "${op.container}"` : `blob "${op.blob}"`} already exists`);
  }
  if (status === 400 && (codeText === 'InvalidResourceName' || codeText === 'OutOfRangeInput' || codeText === 'InvalidUri')) {
    return new SlurmkitError('USAGE', `${where} refused the name: ${firstLine}`);
  }
  if (status === undefined) {
    // No HTTP answer at all: refused, unroutable, DNS, or a try that timed out.
    const why = isAbort(err) ? 'no answer in time' : codeText ?? firstLine;
    return new SlurmkitError('PRECONDITION', `cannot reach ${where} to ${op.what} (${why})`, { hint: fixAccess });
  }
  return new SlurmkitError('COMMAND_FAILED', `${where} failed to ${op.what}: HTTP ${status}${codeText ? ` ${codeText}` : ''}: ${firstLine}`, {
    hint: status >= 500 ? 'the service had a problem; try again' : undefined,
  });
}
