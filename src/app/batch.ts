/** A batch run over blobs as one use case, for the CLI and the server: counts go out as progress events. */
import { runBatch, type BatchProgress, type BatchSummary } from '../jobs/batch.js';
import type { BatchMode } from '../jobs/manifest.js';
import { storageFor } from '../jobs/storage.js';
import type { Progress } from '../util/progress.js';

export interface BatchRequest {
  input: string;
  /** Must exist, like the input: a run with a mistyped container changes nothing. */
  output: string;
  mode: BatchMode;
  force?: boolean;
  tasks?: number;
  timeoutMs?: number;
  /** Everything the runner reports (per-node counts, Slurm's reason while tasks wait), for a progress bar. */
  onProgress?: (p: BatchProgress) => void;
}

export async function batch(cluster: string, req: BatchRequest, progress: Progress): Promise<BatchSummary> {
  const storage = await progress.phase('blob storage', () => storageFor(cluster));
  return runBatch({
    cluster,
    input: req.input,
    output: req.output,
    mode: req.mode,
    storage,
    ...(req.force ? { force: true } : {}),
    ...(req.tasks ? { tasks: req.tasks } : {}),
    ...(req.timeoutMs ? { timeoutMs: req.timeoutMs } : {}),
    onProgress: (p) => {
      progress.count('blobs', p.done, p.total, p.failed);
      req.onProgress?.(p);
    },
    // Ctrl-C (the CLI) or the server stopping cancels the Slurm job.
    ...(progress.signal ? { signal: progress.signal } : {}),
  });
}
