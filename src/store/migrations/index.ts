// Migrations run on every start, in order, inside Kysely's Migrator (which serialises concurrent
// starts on PostgreSQL with a lock table). Each migration knows the dialect it runs on.
import type { Kysely } from 'kysely';
import type { Migration, MigrationProvider } from 'kysely/migration';
import type { Dialect } from '../dialect.ts';
import { migration001 } from './001-foundation.ts';
import { migration002 } from './002-mail.ts';
import { migration003 } from './003-events.ts';

export function migrationProvider(dialect: Dialect): MigrationProvider {
  const all: Record<string, (db: Kysely<any>, dialect: Dialect) => Promise<void>> = {
    '001-foundation': migration001,
    '002-mail': migration002,
    '003-events': migration003,
  };
  return {
    async getMigrations(): Promise<Record<string, Migration>> {
      const out: Record<string, Migration> = {};
      for (const [name, up] of Object.entries(all)) out[name] = { up: (db) => up(db, dialect) };
      return out;
    },
  };
}
