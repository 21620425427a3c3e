/**
 * Errors with stable codes. Each code maps once to a CLI exit code and once to an HTTP status,
 * here. Messages say what went wrong; `hint` says how to fix it.
 */
export type ErrorCode =
  | 'SPEC_INVALID' // the spec or a CLI argument is wrong: nothing was changed
  | 'USAGE' // wrong command-line usage
  | 'NOT_FOUND' // no such cluster, node, template
  | 'CONFLICT' // already exists / wrong state for this operation
  | 'PRECONDITION' // the machine is not ready (not root, binary missing, ...)
  | 'COMMAND_FAILED' // an external command failed
  | 'TIMEOUT' // a wait strategy ran out of time
  | 'CLEANUP_INCOMPLETE' // down could not remove everything
  | 'UNSUPPORTED' // a provider does not support the operation
  | 'INTERRUPTED' // stopped by Ctrl-C or SIGTERM (after cleaning up)
  | 'UNAUTHORIZED' // the server's token is missing or wrong
  | 'INTERNAL';

const EXIT_CODES: Record<ErrorCode, number> = {
  SPEC_INVALID: 2,
  USAGE: 2,
  NOT_FOUND: 3,
  CONFLICT: 4,
  PRECONDITION: 5,
  COMMAND_FAILED: 6,
  TIMEOUT: 7,
  CLEANUP_INCOMPLETE: 8,
  UNSUPPORTED: 9,
  INTERRUPTED: 130,
  UNAUTHORIZED: 10,
  INTERNAL: 1,
};

const HTTP_STATUSES: Record<ErrorCode, number> = {
  SPEC_INVALID: 400,
  USAGE: 400,
  NOT_FOUND: 404,
  CONFLICT: 409,
  PRECONDITION: 412,
  COMMAND_FAILED: 502,
  TIMEOUT: 504,
  CLEANUP_INCOMPLETE: 500,
  UNSUPPORTED: 501,
  INTERRUPTED: 503,
  UNAUTHORIZED: 401,
  INTERNAL: 500,
};

export class SlurmkitError extends Error {
  readonly code: ErrorCode;
  readonly hint: string | undefined;
  /** Extra lines shown under the message (e.g. one per invalid spec field). */
  readonly details: string[];

  constructor(code: ErrorCode, message: string, opts: { hint?: string; details?: string[]; cause?: unknown } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'SlurmkitError';
    this.code = code;
    this.hint = opts.hint;
    this.details = opts.details ?? [];
  }

  get exitCode(): number {
    return EXIT_CODES[this.code];
  }

  get httpStatus(): number {
    return HTTP_STATUSES[this.code];
  }

  toJSON(): Record<string, unknown> {
    return { error: { code: this.code, message: this.message, hint: this.hint, details: this.details } };
  }
}

export function exitCodeOf(err: unknown): number {
  return err instanceof SlurmkitError ? err.exitCode : 1;
}

/** Any thrown value as a SlurmkitError; what is not one is INTERNAL, with its stack. */
export function asSlurmkitError(err: unknown): SlurmkitError {
  return err instanceof SlurmkitError ? err : new SlurmkitError('INTERNAL', (err as Error)?.stack ?? String(err));
}
