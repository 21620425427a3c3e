/** A batch run over blobs as one use case, reporting its count as progress events. */
import { runBatch, type BatchSummary } from '../jobs/batch.js';
import type { BatchMode } from '../jobs/manifest.js';
import { storageFor } from '../jobs/storage.js';
import type { Progress } from '../util/progress.js';

export interface BatchRequest {
  input: string;
  output: string;
  mode: BatchMode;
  force?: boolean;
  tasks?: number;
}

export async function batch(cluster: string, req: BatchRequest, progress: Progress): Promise<BatchSummary> {
  const storage = await progress.phase('blob storage', () => storageFor(cluster));
  // The output container is made when missing, as the demo does: a run should not fail for want of an empty container.
  await storage.mk(req.output);
  return progress.phase(`batch ${req.input} -> ${req.output}`, () =>
    runBatch({
      cluster,
      input: req.input,
      output: req.output,
      mode: req.mode,
      storage,
      ...(req.force ? { force: true } : {}),
      ...(req.tasks ? { tasks: req.tasks } : {}),
      onProgress: (p) => progress.count('blobs', p.done, p.total, p.failed),
      ...(progress.signal ? { signal: progress.signal } : {}),
    }),
  );
}
