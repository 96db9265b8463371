// Text normalisation shared by every cleaning step: one line-ending style, no invisible
// padding characters, no trailing whitespace, at most one blank line in a row.

/** Stands alone on a line where the HTML converter saw a quoted-history container
 * (gmail_quote, divRplyFwdMsg, yahoo_quoted...). Private-use, so never in real text. */
export const HISTORY_MARK = '\uE000';

// Zero-width space, BOM, soft hyphen, combining grapheme joiner, word joiner, Mongolian
// vowel separator: layout padding (newsletter preheaders) that carries no meaning.
const INVISIBLE = /[\u200B\uFEFF\u00AD\u034F\u2060\u180E]/g;
// Characters that, alone on a line with whitespace, still make it look blank.
const BLANKISH = /^[\s\u200C\u200D\u00A0\u3000]*$/;

// Only lines starting with one of these can be blank-looking without being empty after trimEnd.
function mayLookBlank(c: number): boolean {
  return c === 0x200c || c === 0x200d || c === 0x3000 || c === 0xa0 || c === 0x20 || c === 0x09;
}

/** CRLF/CR to LF, drop invisible padding, NBSP to space, strip each line's trailing whitespace.
 * The "-- " signature delimiter keeps its space: it is what tells it apart from a bare "--". */
export function toLines(text: string): string[] {
  const unified = text.replace(/\r\n?/g, '\n').replace(INVISIBLE, '').replace(/\u00A0/g, ' ');
  const lines = unified.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const l = lines[i] ?? '';
    if (l === '-- ') continue;
    const t = l.trimEnd();
    lines[i] = t.length > 0 && mayLookBlank(t.charCodeAt(0)) && BLANKISH.test(t) ? '' : t;
  }
  return lines;
}

export function isBlank(line: string): boolean {
  return line.length === 0 || (mayLookBlank(line.charCodeAt(0)) && BLANKISH.test(line));
}

const QUOTE_BLANK = /^(?: ?>)+$/;

/** Joins lines, dropping history marks, collapsing blank runs (also blank quoted lines such
 * as ">") and trimming blank edges. */
export function joinLines(lines: readonly string[]): string {
  const out: string[] = [];
  let blank = false;
  for (const raw of lines) {
    if (raw === HISTORY_MARK) continue;
    const line = raw.includes(HISTORY_MARK) ? raw.replaceAll(HISTORY_MARK, '').trimEnd() : raw.trimEnd();
    if (isBlank(line)) {
      blank = out.length > 0;
      continue;
    }
    if (blank) out.push('');
    else if (out[out.length - 1] === line && QUOTE_BLANK.test(line)) continue;
    blank = false;
    out.push(line);
  }
  while (out.length > 0 && QUOTE_BLANK.test(out[out.length - 1] ?? '')) out.pop();
  return out.join('\n');
}
