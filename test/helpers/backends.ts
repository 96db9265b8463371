// Runs a suite once per storage backend: always on SQLite (a fresh temp folder), and on
// PostgreSQL when MAILMUX_TEST_DATABASE_URL is set (a fresh schema per suite, dropped afterwards).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe } from 'node:test';
import pg from 'pg';
import { randomString } from '../../src/core/ids.ts';

export const PG_URL_VAR = 'MAILMUX_TEST_DATABASE_URL';

export interface Backend {
  name: 'sqlite' | 'postgres';
  /** Makes an empty database; returns what openStore / startMailmux need and a cleanup. */
  provision(): Promise<{ databaseUrl: string | null; dataDir: string; pgSchema?: string; drop(): Promise<void> }>;
}

const sqlite: Backend = {
  name: 'sqlite',
  async provision() {
    const dataDir = mkdtempSync(join(tmpdir(), 'mailmux-test-'));
    return { databaseUrl: null, dataDir, drop: async () => rmSync(dataDir, { recursive: true, force: true }) };
  },
};

function postgres(url: string): Backend {
  return {
    name: 'postgres',
    async provision() {
      const schema = `t_${randomString(12)}`;
      const client = new pg.Client({ connectionString: url });
      await client.connect();
      await client.query(`CREATE SCHEMA ${schema}`);
      await client.end();
      const dataDir = mkdtempSync(join(tmpdir(), 'mailmux-test-'));
      return {
        databaseUrl: url,
        dataDir,
        pgSchema: schema,
        async drop() {
          const c = new pg.Client({ connectionString: url });
          await c.connect();
          await c.query(`DROP SCHEMA ${schema} CASCADE`);
          await c.end();
          rmSync(dataDir, { recursive: true, force: true });
        },
      };
    },
  };
}

export function backends(): Backend[] {
  const url = process.env[PG_URL_VAR];
  return url ? [sqlite, postgres(url)] : [sqlite];
}

/** describe() once per backend, named "<title> [sqlite]" / "<title> [postgres]". */
export function describeEachBackend(title: string, fn: (backend: Backend) => void): void {
  for (const backend of backends()) describe(`${title} [${backend.name}]`, () => fn(backend));
}
