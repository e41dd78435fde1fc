/** The audit log, for administrators: newest first, paginated by id. */
import type { AuditEntry } from '../metadata/credentials.js';
import type { HubContext } from './context.js';

export class AuditLog {
  constructor(private readonly hub: HubContext) {}

  /** A page of entries older than `before` (an id from the previous page), newest first. */
  async read(page: { before?: number; limit?: number; actor?: string; target?: string } = {}): Promise<{ entries: AuditEntry[]; next: number | null }> {
    const limit = Math.min(Math.max(page.limit ?? 100, 1), 1000);
    const entries = await this.hub.credentials.audit({ ...page, limit });
    return { entries, next: entries.length === limit ? entries[entries.length - 1]!.id : null };
  }
}
