// PostgreSQL: the full-text vectors of messages stored before the document was split into words
// (MessagesRepo pgSearchVector). PostgreSQL's parser had kept an address, a host name, a URL or a
// number like 2026-11 as one lexeme ('bob@partner.example'), which a query, split into words at
// those characters (searchWords: bob & partner & example), never matched. Each such lexeme is
// replaced by its parts, with its positions and weights; lexemes with no ASCII punctuation are kept
// as they are, and so are vectors with none. The texts the vectors were made of are not needed:
// the lexemes are already folded. SQLite's FTS5 always split there: nothing to do.
import { sql, type Kysely } from 'kysely';
import type { Dialect } from '../dialect.ts';

/** ASCII characters other than letters and digits: where a lexeme is split. */
const PUNCT = String.raw`[\x01-\x2f\x3a-\x40\x5b-\x60\x7b-\x7f]`;

export async function migration015(db: Kysely<any>, dialect: Dialect): Promise<void> {
  if (dialect !== 'postgres') return;
  // A part holds no quote or backslash (both are split at), so it needs no escaping in the
  // tsvector's text form; tsvector input merges a part that also stands alone, positions and all.
  await sql`
    UPDATE messages AS m SET search = coalesce((
      SELECT string_agg('''' || part || '''' || coalesce(':' || nullif(pw.pw, ''), ''), ' ')::tsvector
      FROM unnest(m.search) AS u(lexeme, positions, weights)
      CROSS JOIN LATERAL (
        SELECT array_to_string(ARRAY(SELECT p::text || CASE w WHEN 'D' THEN '' ELSE w END FROM unnest(u.positions, u.weights) AS x(p, w)), ',') AS pw
      ) AS pw
      CROSS JOIN LATERAL regexp_split_to_table(u.lexeme, ${sql.lit(`${PUNCT}+`)}) AS part
      WHERE part <> ''
    ), ''::tsvector)
    WHERE EXISTS (SELECT 1 FROM unnest(m.search) AS u WHERE u.lexeme ~ ${sql.lit(PUNCT)})
  `.execute(db);
}
