// The two backends and the few column types that differ between them.
export type Dialect = 'sqlite' | 'postgres';

export function bigintType(dialect: Dialect): 'integer' | 'bigint' {
  return dialect === 'sqlite' ? 'integer' : 'bigint';
}
