import { sendJSON } from '../respond.js';
import type { Ctx } from '../context.js';

/** GET /v2/ — the API version check (OCI dist-spec end-1). */
export async function apiBase(ctx: Ctx): Promise<void> {
  sendJSON(ctx.res, 200, {});
}
