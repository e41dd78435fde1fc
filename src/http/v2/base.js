import { sendJSON } from '../respond.js';
/** GET /v2/ — the API version check (OCI dist-spec end-1). */
export async function apiBase(ctx) {
    sendJSON(ctx.res, 200, {});
}
