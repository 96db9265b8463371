// Migrations run on every start, in order, inside Kysely's Migrator (which serialises concurrent
// starts on PostgreSQL with a lock table). Each migration knows the dialect it runs on.
import type { Kysely } from 'kysely';
import type { Migration, MigrationProvider } from 'kysely/migration';
import type { Dialect } from '../dialect.ts';
import { migration001 } from './001-foundation.ts';
import { migration002 } from './002-mail.ts';
import { migration003 } from './003-events.ts';
import { migration004 } from './004-sync.ts';
import { migration005 } from './005-webhooks.ts';
import { migration006 } from './006-send.ts';
import { migration007 } from './007-uploads.ts';
import { migration008 } from './008-inline-blobs.ts';
import { migration009 } from './009-query-speed.ts';
import { migration010 } from './010-narrow-messages.ts';
import { migration011 } from './011-list-keys.ts';
import { migration012 } from './012-message-keys.ts';
import { migration013 } from './013-fts-columns.ts';
import { migration014 } from './014-unused-indexes.ts';
import { migration015 } from './015-search-words.ts';

export function migrationProvider(dialect: Dialect): MigrationProvider {
  const all: Record<string, (db: Kysely<any>, dialect: Dialect) => Promise<void>> = {
    '001-foundation': migration001,
    '002-mail': migration002,
    '003-events': migration003,
    '004-sync': migration004,
    '005-webhooks': migration005,
    '006-send': migration006,
    '007-uploads': migration007,
    '008-inline-blobs': migration008,
    '009-query-speed': migration009,
    '010-narrow-messages': migration010,
    '011-list-keys': migration011,
    '012-message-keys': migration012,
    '013-fts-columns': migration013,
    '014-unused-indexes': migration014,
    '015-search-words': migration015,
  };
  return {
    async getMigrations(): Promise<Record<string, Migration>> {
      const out: Record<string, Migration> = {};
      for (const [name, up] of Object.entries(all)) out[name] = { up: (db) => up(db, dialect) };
      return out;
    },
  };
}
