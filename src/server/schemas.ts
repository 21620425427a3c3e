/**
 * The API's shapes, in zod: the same schemas validate requests and make /openapi.json.
 * Every name here is a component of the OpenAPI document.
 */
import { z } from '@hono/zod-openapi';
import { OPERATION_KINDS } from '../app/operations.js';

export const ErrorSchema = z
  .object({
    error: z.object({
      code: z.string().openapi({ example: 'NOT_FOUND' }),
      message: z.string(),
      hint: z.string().optional(),
      details: z.array(z.string()),
    }),
  })
  .openapi('Error');

export const ClusterSchema = z
  .object({
    name: z.string(),
    id: z.string(),
    provider: z.string(),
    phase: z.string().openapi({ description: 'creating, running, stopped, failed, ... or broken when the state cannot be read' }),
    subnet: z.string(),
    nodes: z.object({ total: z.number().int(), running: z.number().int(), idle: z.number().int() }),
    createdAt: z.string(),
    folder: z.string(),
    error: z.string().optional(),
    fix: z.string().optional(),
  })
  .openapi('Cluster');

export const NodeSchema = z
  .object({
    name: z.string(),
    role: z.enum(['head', 'worker', 'login']),
    address: z.string(),
    host: z.string().nullable(),
    running: z.boolean(),
    pid: z.number().int().nullable(),
    processes: z.array(z.string()),
    slurmState: z.string().nullable().openapi({ description: "Slurm's state (idle, alloc, mixed, down, drain, ...)" }),
    reason: z.string().nullable(),
    power: z.string().nullable(),
  })
  .openapi('Node');

export const ClusterDetailSchema = ClusterSchema.extend({
  nodeList: z.array(NodeSchema),
  timings: z.array(z.object({ phase: z.string(), ms: z.number() })),
  scaleEvents: z.array(z.record(z.string(), z.unknown())),
}).openapi('ClusterDetail');

export const JobSchema = z
  .object({
    id: z.string(),
    name: z.string(),
    user: z.string(),
    partition: z.string(),
    state: z.string().openapi({ example: 'RUNNING' }),
    nodes: z.string(),
    reason: z.string(),
    submitTime: z.string(),
    startTime: z.string(),
    endTime: z.string(),
    exitCode: z.string(),
    stdout: z.string(),
  })
  .openapi('Job');

export const SubmittedSchema = z.object({ id: z.string(), user: z.string(), stdout: z.string() }).openapi('Submitted');

export const ProgressEventSchema = z
  .union([
    z.object({ type: z.literal('info'), message: z.string() }),
    z.object({ type: z.literal('phase-start'), phase: z.string() }),
    z.object({ type: z.literal('phase'), phase: z.string(), ms: z.number(), ok: z.boolean() }),
    z.object({ type: z.literal('count'), what: z.string(), done: z.number(), failed: z.number(), total: z.number() }),
  ])
  .openapi('ProgressEvent');

export const OperationSchema = z
  .object({
    id: z.string(),
    kind: z.enum(OPERATION_KINDS),
    cluster: z.string(),
    status: z.enum(['running', 'succeeded', 'failed']),
    startedAt: z.string(),
    endedAt: z.string().optional(),
    ms: z.number().optional(),
    events: z.array(ProgressEventSchema),
    result: z.unknown().optional(),
    error: z.object({ code: z.string(), message: z.string(), hint: z.string().optional(), details: z.array(z.string()) }).optional(),
  })
  .openapi('Operation');

export const ContainerSchema = z
  .object({ name: z.string(), lastModified: z.string(), etag: z.string(), metadata: z.record(z.string(), z.string()) })
  .openapi('Container');

export const BlobSchema = z
  .object({
    name: z.string(),
    size: z.number().int(),
    lastModified: z.string(),
    etag: z.string(),
    contentType: z.string().optional(),
    metadata: z.record(z.string(), z.string()),
  })
  .openapi('Blob');

// Requests

const NAME = /^[a-z][a-z0-9-]{0,30}$/;

export const ClusterParam = z.object({
  cluster: z
    .string()
    .regex(NAME, 'a cluster name is 1-31 lowercase letters, digits or "-", starting with a letter')
    .openapi({ param: { name: 'cluster', in: 'path' }, example: 'lab' }),
});

export const CreateClusterSchema = z
  .object({
    template: z.string().min(1).optional().openapi({ description: 'a built-in template (lab when neither template nor spec is given)', example: 'minimal' }),
    spec: z.string().min(1).optional().openapi({ description: 'a cluster spec, as YAML text' }),
    name: z.string().regex(NAME, 'a cluster name is 1-31 lowercase letters, digits or "-", starting with a letter').optional(),
    provider: z.string().optional().openapi({ example: 'local' }),
  })
  .strict()
  .openapi('CreateCluster');

export const AddNodesSchema = z
  .object({
    count: z.number().int().min(1).max(1000),
    group: z.string().min(1).optional(),
  })
  .strict()
  .openapi('AddNodes');

export const SubmitSchema = z
  .object({
    script: z.string().min(1).max(1_000_000).openapi({ example: '#!/bin/bash\nhostname\n' }),
    user: z.string().min(1).optional().openapi({ description: 'a cluster user from the spec; root when left out' }),
    partition: z.string().min(1).optional(),
    name: z.string().min(1).max(200).optional(),
  })
  .strict()
  .openapi('SubmitJob');

export const BatchSchema = z
  .object({
    input: z.string().min(3),
    output: z.string().min(3),
    builtin: z.literal('grayscale').optional(),
    command: z.array(z.string()).min(1).optional().openapi({ description: 'a command run per blob, as in `slurmkit batch --command`' }),
    force: z.boolean().optional(),
    tasks: z.number().int().min(1).max(1000).optional(),
  })
  .strict()
  .refine((b) => (b.builtin === undefined) !== (b.command === undefined), { message: 'give either builtin or command', path: ['builtin'] })
  .openapi('BatchRun');

export const CallSchema = z
  .object({
    source: z.string().min(1).max(1_000_000).openapi({ description: "a self-contained function's source (fn.toString())", example: '(a, b) => a + b' }),
    args: z.array(z.unknown()).max(1000).openapi({ description: 'its arguments, as JSON', example: [1, 2] }),
    user: z.string().min(1).optional().openapi({ description: 'a cluster user from the spec; root when left out' }),
    partition: z.string().min(1).optional(),
  })
  .strict()
  .openapi('Call');

export const CallSubmittedSchema = z.object({ call: z.string(), job: z.string(), user: z.string() }).openapi('CallSubmitted');

export const CallResultSchema = z
  .object({
    done: z.boolean().openapi({ description: 'false while the job has not written a result' }),
    result: z
      .union([
        z.object({ ok: z.literal(true), value: z.unknown() }),
        z.object({ ok: z.literal(false), error: z.object({ name: z.string(), message: z.string(), stack: z.string() }) }),
      ])
      .optional(),
  })
  .openapi('CallResult');

export const PartitionSchema = z
  .object({
    name: z.string(),
    default: z.boolean(),
    available: z.string(),
    timeLimit: z.string(),
    nodes: z.object({ allocated: z.number().int(), idle: z.number().int(), other: z.number().int(), total: z.number().int() }),
    nodeList: z.string(),
  })
  .openapi('Partition');
