/**
 * A function call shipped to a node as a Slurm job: the on-disk format shared by every client
 * that ships functions (the TypeScript SDK's `cluster.run(fn)`, and src/python/slurmkit_run.py
 * for Python). A call is a folder the job's user owns, holding `call.json` (what to run) and,
 * once the job ran, `result.json`; a Python call also holds call.pkl and result.pkl (cloudpickle).
 */

export const CALL_FILE = 'call.json';
export const RESULT_FILE = 'result.json';

export type CallSpec =
  | {
      /** The function's source; it must be self-contained (no variables from around it). */
      language: 'javascript';
      source: string;
      /** Its arguments, as JSON. */
      args: unknown[];
    }
  | {
      /** The function, its arguments and keyword arguments, pickled with cloudpickle into `pickle`. */
      language: 'python';
      pickle: string;
      name: string;
    };

export type CallResult = { ok: true; value: unknown } | { ok: false; error: { name: string; message: string; stack: string } };
