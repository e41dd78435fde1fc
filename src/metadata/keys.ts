/**
 * Queries of the token service's signing keys (table signing_keys), over
 * the metadata store's one database handle. Writes go through the store's
 * writeTransaction (the write gate on SQLite, conflict retries on PostgreSQL).
 */
import type { Selectable } from 'kysely';
import type { MetadataDatabase } from './database.js';
import type { SigningKeysTable } from './schema.js';

export interface SigningKeyRecord {
  ordinal: number;
  kid: string;
  algorithm: string;
  /** PKCS#8 PEM, or null when the private key is kept in a file. */
  privateKey: string | null;
  /** base64 DER of the key's self-signed certificate. */
  certificate: string;
  createdAt: number;
  activeAt: number;
  retiredAt: number | null;
}

export type NewSigningKey = Omit<SigningKeyRecord, 'ordinal' | 'createdAt' | 'retiredAt'>;

function toRecord(row: Omit<Selectable<SigningKeysTable>, 'id'>): SigningKeyRecord {
  return {
    ordinal: Number(row.ordinal),
    kid: row.kid,
    algorithm: row.algorithm,
    privateKey: row.private_key,
    certificate: row.certificate,
    createdAt: Number(row.created_at),
    activeAt: Number(row.active_at),
    retiredAt: row.retired_at === null ? null : Number(row.retired_at),
  };
}

export class SigningKeyQueries {
  constructor(readonly store: MetadataDatabase) {}

  /** Every key, retired ones too, oldest first. */
  async list(): Promise<SigningKeyRecord[]> {
    const rows = await this.store.db.selectFrom('signing_keys').selectAll().orderBy('ordinal').execute();
    return rows.map(toRecord);
  }

  /** The database's clock (ms), so every replica agrees when a key becomes active. */
  now(): Promise<number> {
    return this.store.clock();
  }

  /**
   * Inserts `key` as the first key unless a first key exists already (two
   * processes starting at once both try; the unique ordinal lets one win).
   * Returns whether this one was inserted.
   */
  async insertFirst(key: NewSigningKey): Promise<boolean> {
    return this.store.writeTransaction(async (trx) => {
      const at = await this.store.clock(trx);
      const result = await trx
        .insertInto('signing_keys')
        .values({ ordinal: 1, kid: key.kid, algorithm: key.algorithm, private_key: key.privateKey, certificate: key.certificate, created_at: at, active_at: key.activeAt, retired_at: null })
        .onConflict((oc) => oc.doNothing())
        .executeTakeFirst();
      return Number(result.numInsertedOrUpdatedRows ?? 0) > 0;
    });
  }

  /**
   * Adds a key after the others (rotation), or does nothing when a key with
   * this kid exists already (the same key file read by several replicas).
   * Returns the key's record either way.
   */
  async add(key: NewSigningKey): Promise<SigningKeyRecord> {
    for (let attempt = 0; attempt < 20; attempt++) {
      const done = await this.store.writeTransaction(async (trx) => {
        const existing = await trx.selectFrom('signing_keys').selectAll().where('kid', '=', key.kid).executeTakeFirst();
        if (existing) return toRecord(existing);
        const max = await trx.selectFrom('signing_keys').select((eb) => eb.fn.max('ordinal').as('m')).executeTakeFirst();
        const at = await this.store.clock(trx);
        const result = await trx
          .insertInto('signing_keys')
          .values({ ordinal: Number(max?.m ?? 0) + 1, kid: key.kid, algorithm: key.algorithm, private_key: key.privateKey, certificate: key.certificate, created_at: at, active_at: key.activeAt, retired_at: null })
          .onConflict((oc) => oc.doNothing())
          .executeTakeFirst();
        return Number(result.numInsertedOrUpdatedRows ?? 0) > 0 ? null : undefined;
      });
      if (done) return done;
      // Inserted (null): read it back. Lost a race for the ordinal or kid (undefined): look again.
      const row = await this.store.db.selectFrom('signing_keys').selectAll().where('kid', '=', key.kid).executeTakeFirst();
      if (row) {
        // Every replica's key ring reads the keys again (publishes and verifies the new one).
        if (done === null) await this.store.signals.changed('keys');
        return toRecord(row);
      }
    }
    throw new Error('signing key: could not add the key (too many concurrent additions)');
  }

  /** Marks a key retired from now on; false when no such key (or it was retired already). */
  async retire(kid: string): Promise<boolean> {
    const retired = await this.store.writeTransaction(async (trx) => {
      const at = await this.store.clock(trx);
      const result = await trx.updateTable('signing_keys').set({ retired_at: at }).where('kid', '=', kid).where('retired_at', 'is', null).executeTakeFirst();
      return Number(result.numUpdatedRows) > 0;
    });
    // A retired key must stop verifying on every replica, not at its next periodic reload.
    if (retired) await this.store.signals.changed('keys');
    return retired;
  }
}
