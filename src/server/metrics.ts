/**
 * Prometheus metrics (prom-client): nodes by Slurm state and queue length per running
 * cluster, read from Slurm when scraped; job wait times; operations and their durations;
 * API requests and their latency.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { queue } from '../app/jobs.js';
import type { Operation } from '../app/operations.js';
import { listStates, slurmNodes } from '../app/clusters.js';

/** squeue prints local times without a zone; Date parses those as local too. */
const secondsSince = (time: string, now: number): number | undefined => {
  const t = Date.parse(time);
  return Number.isNaN(t) ? undefined : Math.max(0, (now - t) / 1000);
};

export class Metrics {
  readonly registry = new Registry();
  private readonly collectSlurm: () => Promise<void>;
  private readonly operations = new Counter({ name: 'slurmkit_operations_total', help: 'Operations ended, by kind and status', labelNames: ['kind', 'status'], registers: [this.registry] });
  private readonly operationSeconds = new Histogram({
    name: 'slurmkit_operation_duration_seconds',
    help: 'How long operations took, by kind',
    labelNames: ['kind'],
    buckets: [0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600],
    registers: [this.registry],
  });
  private readonly requests = new Histogram({
    name: 'slurmkit_http_request_duration_seconds',
    help: 'API requests, by method, route and status',
    labelNames: ['method', 'route', 'status'],
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [this.registry],
  });

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: 'slurmkit_server_' });
    const jobs = new Gauge({ name: 'slurmkit_queue_jobs', help: 'Jobs in the queue by state (pending, running, ...), per running cluster', labelNames: ['cluster', 'state'], registers: [this.registry] });
    const wait = new Gauge({
      name: 'slurmkit_job_wait_seconds',
      help: 'Job wait time per running cluster: the longest a pending job has waited so far (pending_max), and the mean wait of running jobs from submit to start (running_mean)',
      labelNames: ['cluster', 'stat'],
      registers: [this.registry],
    });
    const nodes = new Gauge({ name: 'slurmkit_nodes', help: 'Worker nodes by Slurm state, per running cluster', labelNames: ['cluster', 'state'], registers: [this.registry] });
    // The three are read together before each scrape, so a scrape asks each cluster once.
    this.collectSlurm = async () => {
      nodes.reset();
      jobs.reset();
      wait.reset();
      const running = (await listStates()).filter((st) => st.phase === 'running');
      await Promise.all(
        running.map(async (st) => {
          const [slurm, q] = await Promise.all([slurmNodes(st), queue(st.name).catch(() => undefined)]);
          const counts = new Map<string, number>();
          for (const n of slurm ?? []) counts.set(n.state, (counts.get(n.state) ?? 0) + 1);
          for (const [state, n] of counts) nodes.set({ cluster: st.name, state }, n);
          if (!q) return;
          const byState = new Map<string, number>();
          for (const j of q) byState.set(j.state, (byState.get(j.state) ?? 0) + 1);
          for (const state of ['PENDING', 'RUNNING']) byState.set(state, byState.get(state) ?? 0);
          for (const [state, n] of byState) jobs.set({ cluster: st.name, state: state.toLowerCase() }, n);
          const now = Date.now();
          const pending = q.filter((j) => j.state === 'PENDING').map((j) => secondsSince(j.submitTime, now) ?? 0);
          const started = q.filter((j) => j.state === 'RUNNING' && j.startTime && j.submitTime).map((j) => (Date.parse(j.startTime) - Date.parse(j.submitTime)) / 1000);
          wait.set({ cluster: st.name, stat: 'pending_max' }, pending.length ? Math.max(...pending) : 0);
          wait.set({ cluster: st.name, stat: 'running_mean' }, started.length ? started.reduce((a, b) => a + b, 0) / started.length : 0);
        }),
      );
    };
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  operationEnded(op: Operation): void {
    this.operations.inc({ kind: op.kind, status: op.status });
    if (op.ms !== undefined) this.operationSeconds.observe({ kind: op.kind }, op.ms / 1000);
  }

  request(method: string, route: string, status: number, seconds: number): void {
    this.requests.observe({ method, route, status: String(status) }, seconds);
  }

  async render(): Promise<string> {
    await this.collectSlurm();
    return this.registry.metrics();
  }
}
