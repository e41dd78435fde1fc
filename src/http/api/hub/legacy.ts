/**
 * The operations of /berth/v1/ that src/http/api/index.ts serves (garbage
 * collection and storage accounting, for berth.admins or administrators),
 * described for the OpenAPI document. Their handlers stay where they are;
 * the routes test checks that this list and that router agree.
 */
import { z } from 'zod';
import type { OperationSpec } from './types.js';

type Spec = OperationSpec<z.ZodType, undefined, z.ZodType | undefined>;

const flag = z.enum(['true', 'false', '1', '0', '']).optional();
const goDuration = z.string().optional();

const GcRun = z.object({
  id: z.number().int(),
  state: z.enum(['queued', 'running', 'finished', 'failed']),
  options: z.record(z.string(), z.unknown()).optional(),
  error: z.string().nullable().optional(),
}).catchall(z.unknown());

export const LEGACY_OPERATIONS: Spec[] = [
  {
    id: 'startGarbageCollection',
    method: 'POST',
    path: '/berth/v1/gc',
    summary: 'Start (or join) a garbage collection',
    description: '202 with the run and its Location while it runs; 200 when it finished within ?wait.',
    tag: 'maintenance',
    auth: 'required',
    query: z.strictObject({
      dryrun: flag.describe('report what would be removed, remove nothing'),
      deleteuntagged: flag.describe('also remove manifests no tag points to'),
      grace: goDuration.describe('spare blobs younger than this (Go duration)'),
      wait: z.string().optional().describe('true, or a duration up to 5m, to wait for the run'),
    }),
    response: { status: 202, description: 'the run (200 when finished)', schema: GcRun },
    errors: [403, 405],
  },
  {
    id: 'getGarbageCollection',
    method: 'GET',
    path: '/berth/v1/gc/runs/{id}',
    summary: 'A garbage collection run',
    tag: 'maintenance',
    auth: 'required',
    params: { id: 'run' },
    response: { status: 200, description: 'the run', schema: GcRun },
    errors: [403, 404],
  },
  {
    id: 'getStorageUsage',
    method: 'GET',
    path: '/berth/v1/storage',
    summary: 'Storage used per repository and in total',
    tag: 'maintenance',
    auth: 'required',
    response: { status: 200, description: 'the figures', schema: z.record(z.string(), z.unknown()) },
    errors: [403],
  },
];

/**
 * With accounts off, src/http/api/index.ts also answers a repository's
 * usage and its delete (with accounts on, the Hub API's getRepository and
 * deleteRepository take these paths over).
 */
export const REGISTRY_REPOSITORY_OPERATIONS: Spec[] = [
  {
    id: 'getRepositoryUsage',
    method: 'GET',
    path: '/berth/v1/repositories/{name}',
    summary: "A repository's size, blob and tag counts",
    tag: 'repositories',
    auth: 'required',
    params: { name: 'repository' },
    response: {
      status: 200,
      description: 'the figures',
      schema: z.object({ name: z.string(), sizeBytes: z.number().int(), blobs: z.number().int(), tags: z.number().int() }),
    },
    errors: [403, 404],
  },
  {
    id: 'deleteRepository',
    method: 'DELETE',
    path: '/berth/v1/repositories/{name}',
    summary: 'Delete a repository: its tags, manifests and blob links',
    tag: 'repositories',
    auth: 'required',
    params: { name: 'repository' },
    response: {
      status: 202,
      description: 'deleted; the blobs go at the next garbage collection',
      schema: z.object({ repository: z.string(), manifestsDeleted: z.number().int(), tagsDeleted: z.number().int() }),
    },
    errors: [403, 404, 405, 409],
  },
];
