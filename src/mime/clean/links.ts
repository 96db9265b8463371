// Extracts the links an agent may follow from clean text.
//
// Rules: http(s) URLs only, in order of first appearance, deduplicated, at most
// EXTRACTED_LINKS_MAX. mailto: addresses are not links (they are visible in the text and an
// agent replies through the API, not by fetching them). Links come from the clean text, so
// quoted history, signatures and tracking pixels removed by the cleaner never appear here,
// and every listed link is visible in body.text.
import { EXTRACTED_LINKS_MAX } from './limits.ts';

// Stops at whitespace, quotes, angle brackets and ASCII controls; bounded by the line.
const URL = /\bhttps?:\/\/[^\s<>"'`\u0000-\u001f\u007f]{1,4000}/gi;
const TRAILING = /[.,;:!?'"»›)\]}*]$/;

function trimUrl(url: string): string {
  let end = url.length;
  // bracket balance of url[0, end): a closing bracket that matches one inside the URL
  // (Wikipedia-style paths) is part of it, an unmatched one is the sentence's
  let parens = 0;
  let squares = 0;
  for (const c of url) {
    if (c === '(') parens++;
    else if (c === ')') parens--;
    else if (c === '[') squares++;
    else if (c === ']') squares--;
  }
  while (end > 0 && TRAILING.test(url[end - 1] ?? '')) {
    const last = url[end - 1];
    if (last === ')' && parens >= 0) break;
    if (last === ']' && squares >= 0) break;
    if (last === ')') parens++;
    if (last === ']') squares++;
    end--;
  }
  return url.slice(0, end);
}

export function extractLinks(text: string): string[] {
  const seen = new Set<string>();
  const links: string[] = [];
  for (const m of text.matchAll(URL)) {
    const url = trimUrl(m[0]);
    if (!/^https?:\/\/[^/?#\s]+/i.test(url) || seen.has(url)) continue;
    seen.add(url);
    links.push(url);
    if (links.length >= EXTRACTED_LINKS_MAX) break;
  }
  return links;
}
