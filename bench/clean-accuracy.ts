// Accuracy and speed of the body cleaner on test/fixtures/clean: per-fixture pass/fail,
// exact-match accuracy, line-level accuracy (LCS of expected and actual lines) and time per
// message. A second table runs every fixture that has an HTML part through part=html with
// our converter and with the html-to-text library, to compare the two on the same rules.
// Run: node bench/clean-accuracy.ts [--verbose]
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import PostalMime from 'postal-mime';
import { convert } from 'html-to-text';
import type { HtmlToTextOptions } from 'html-to-text';
import { cleanBody, DEFAULT_CLEAN_OPTIONS } from '../src/mime/clean/index.ts';
import { cleanText } from '../src/mime/clean/clean-text.ts';
import { HISTORY_MARK } from '../src/mime/clean/normalize.ts';

const DIR = new URL('../test/fixtures/clean/', import.meta.url).pathname;
const RUNS = 20;
const verbose = process.argv.includes('--verbose');

type Fixture = { name: string; text: string | null; html: string | null; subject: string | null; expected: string };

// postal-mime fills a missing text or HTML part by converting the other one; the cleaner
// must see only the parts the sender wrote, so presence is read from the MIME headers.
async function load(name: string): Promise<Fixture> {
  const raw = readFileSync(join(DIR, `${name}.eml`));
  const email = await PostalMime.parse(raw);
  const src = raw.toString('latin1');
  const hasText = /^content-type:\s*text\/plain/im.test(src);
  const hasHtml = /^content-type:\s*text\/html/im.test(src);
  const expected = readFileSync(join(DIR, `${name}.expected.txt`), 'utf8').replace(/\n$/, '');
  return { name, text: hasText ? (email.text ?? '') : null, html: hasHtml ? (email.html ?? '') : null, subject: email.subject ?? null, expected };
}

/** Length of the longest common subsequence of two line lists. */
function lcs(a: readonly string[], b: readonly string[]): number {
  let prev = new Array<number>(b.length + 1).fill(0);
  for (const x of a) {
    const cur = new Array<number>(b.length + 1).fill(0);
    for (let j = 0; j < b.length; j++) cur[j + 1] = x === b[j] ? (prev[j] ?? 0) + 1 : Math.max(prev[j + 1] ?? 0, cur[j] ?? 0);
    prev = cur;
  }
  return prev[b.length] ?? 0;
}

function lineScores(expected: string, actual: string): { recall: number; precision: number } {
  const e = expected === '' ? [] : expected.split('\n');
  const a = actual === '' ? [] : actual.split('\n');
  const common = lcs(e, a);
  return { recall: e.length === 0 ? (a.length === 0 ? 1 : 0) : common / e.length, precision: a.length === 0 ? (e.length === 0 ? 1 : 0) : common / a.length };
}

const pct = (x: number): string => `${(x * 100).toFixed(1)}%`;

// html-to-text configured as close to our rendering rules as its options allow.
const LIBRARY_OPTIONS: HtmlToTextOptions = {
  wordwrap: false,
  formatters: {
    historyMark: (elem, walk, builder) => {
      builder.openBlock({ leadingLineBreaks: 1 });
      builder.addLiteral(HISTORY_MARK);
      builder.closeBlock({ trailingLineBreaks: 1 });
      builder.openBlock({ leadingLineBreaks: 1 });
      walk(elem.children, builder);
      builder.closeBlock({ trailingLineBreaks: 1 });
    },
  },
  selectors: [
    { selector: 'a', options: { linkBrackets: ['(', ')'], hideLinkHrefIfSameAsText: true } },
    { selector: 'img', format: 'skip' },
    ...['h1', 'h2', 'h3', 'h4', 'h5', 'h6'].map((h) => ({ selector: h, options: { uppercase: false } })),
    { selector: 'ul', options: { itemPrefix: '- ' } },
    { selector: 'p.MsoNormal', format: 'block' },
    { selector: 'hr', format: 'block' },
    { selector: '[style*="display:none"]', format: 'skip' },
    { selector: '[style*="display: none"]', format: 'skip' },
    ...['div.gmail_quote', 'div.yahoo_quoted', 'div.moz-cite-prefix', 'div.protonmail_quote', 'div#divRplyFwdMsg', 'div#appendonsend'].map((selector) => ({ selector, format: 'historyMark' })),
  ],
};

const names = readdirSync(DIR).filter((f) => f.endsWith('.eml')).map((f) => f.slice(0, -4)).sort();
const fixtures = await Promise.all(names.map(load));

let exact = 0;
let recallSum = 0;
let precisionSum = 0;
let totalMs = 0;
let maxMs = 0;
console.log('fixture'.padEnd(36), 'result', 'lines(recall/precision)', 'ms/msg');
for (const f of fixtures) {
  const input = { text: f.text, html: f.html, subject: f.subject };
  const actual = cleanBody(input, DEFAULT_CLEAN_OPTIONS).text ?? '';
  const start = performance.now();
  for (let i = 0; i < RUNS; i++) cleanBody(input, DEFAULT_CLEAN_OPTIONS);
  const ms = (performance.now() - start) / RUNS;
  totalMs += ms;
  maxMs = Math.max(maxMs, ms);
  const ok = actual === f.expected;
  const s = lineScores(f.expected, actual);
  exact += ok ? 1 : 0;
  recallSum += s.recall;
  precisionSum += s.precision;
  console.log(f.name.padEnd(36), ok ? 'PASS  ' : 'FAIL  ', `${pct(s.recall)} / ${pct(s.precision)}`.padEnd(23), ms.toFixed(3));
  if (!ok && verbose) console.log(`--- expected\n${f.expected}\n--- actual\n${actual}\n---`);
}
const n = fixtures.length;
console.log(`\nfixtures: ${n}`);
console.log(`exact match: ${exact}/${n} = ${pct(exact / n)}`);
console.log(`line-level recall (expected lines present, in order): ${pct(recallSum / n)}`);
console.log(`line-level precision (output lines expected, in order): ${pct(precisionSum / n)}`);
console.log(`time per message (cleanBody, mean of ${RUNS} runs): ${(totalMs / n).toFixed(3)} ms, slowest ${maxMs.toFixed(3)} ms`);

// HTML converter comparison: part=html through the same quote/signature rules.
const withHtml = fixtures.filter((f) => f.html !== null);
const score = { own: { exact: 0, recall: 0, ms: 0 }, lib: { exact: 0, recall: 0, ms: 0 } };
const htmlOnly = { own: 0, lib: 0, n: 0 };
for (const f of withHtml) {
  const html = f.html ?? '';
  const t0 = performance.now();
  const own = cleanBody({ text: null, html, subject: f.subject }, { ...DEFAULT_CLEAN_OPTIONS, part: 'html' }).text ?? '';
  const t1 = performance.now();
  const lib = cleanText(convert(html, LIBRARY_OPTIONS), { subject: f.subject, stripQuotes: true, stripSignature: true }).text;
  const t2 = performance.now();
  score.own.ms += t1 - t0;
  score.lib.ms += t2 - t1;
  score.own.exact += own === f.expected ? 1 : 0;
  score.lib.exact += lib === f.expected ? 1 : 0;
  score.own.recall += lineScores(f.expected, own).recall;
  score.lib.recall += lineScores(f.expected, lib).recall;
  if (f.text === null || f.text.trim() === '' || f.text.includes('View this email in your browser')) {
    htmlOnly.n++;
    htmlOnly.own += own === f.expected ? 1 : 0;
    htmlOnly.lib += lib === f.expected ? 1 : 0;
  }
  if (verbose && own !== f.expected) console.log(`--- html ${f.name} expected\n${f.expected}\n--- own\n${own}\n---`);
}
const m = withHtml.length;
console.log(`\nHTML converters on the ${m} fixtures with an HTML part (part=html, same quote/signature rules):`);
console.log(`  own converter: exact ${score.own.exact}/${m} (${pct(score.own.exact / m)}), line recall ${pct(score.own.recall / m)}, ${(score.own.ms / m).toFixed(3)} ms/msg; HTML-led fixtures exact ${htmlOnly.own}/${htmlOnly.n}`);
console.log(`  html-to-text : exact ${score.lib.exact}/${m} (${pct(score.lib.exact / m)}), line recall ${pct(score.lib.recall / m)}, ${(score.lib.ms / m).toFixed(3)} ms/msg; HTML-led fixtures exact ${htmlOnly.lib}/${htmlOnly.n}`);
