// A small, forgiving HTML parser for mail bodies: builds an element tree the way browsers
// roughly would (implied </p>, </li>, </tr>, </td>; void elements; raw-text elements) in one
// linear pass. It is not a full HTML5 tree builder: mail HTML only needs to be read, and
// every step is bounded (depth, end-tag search) so hostile markup cannot make it quadratic.
import { HTML_MAX_DEPTH, HTML_MAX_ELEMENTS } from './limits.ts';
import { decodeEntities } from './html-entities.ts';

export type HtmlElement = {
  tag: string;
  attrs: Record<string, string>;
  children: HtmlNode[];
  /** Renderer caches (contains a block element / renders visible text), filled on demand. */
  hasBlock?: boolean;
  hasText?: boolean;
};
export type HtmlNode = HtmlElement | string;

const VOID = new Set(['area', 'base', 'br', 'col', 'embed', 'hr', 'img', 'input', 'link', 'meta', 'param', 'source', 'track', 'wbr', 'basefont', 'bgsound', 'frame', 'keygen']);
// Content is raw text up to the matching end tag (never parsed as markup).
const RAW_TEXT = new Set(['script', 'style', 'title', 'textarea', 'xmp', 'iframe', 'noembed', 'noframes', 'plaintext']);
// A start tag of one of these closes an open <p> (HTML "close a p element").
const CLOSES_P = new Set(['address', 'article', 'aside', 'blockquote', 'center', 'details', 'div', 'dl', 'fieldset', 'figure', 'footer', 'form', 'h1', 'h2', 'h3', 'h4', 'h5', 'h6', 'header', 'hr', 'main', 'nav', 'ol', 'p', 'pre', 'section', 'table', 'ul']);
// End tags are matched against at most this many open elements; mismatches in real mail are
// local, and the bound keeps a flood of stray end tags linear.
const END_TAG_SEARCH = 32;

/** Parses `html` into a tree rooted at a synthetic '#root' element. */
export function parseHtml(html: string): HtmlElement {
  const root: HtmlElement = { tag: '#root', attrs: NO_ATTRS, children: [] };
  const stack: HtmlElement[] = [root];
  let elements = 0;
  const top = (): HtmlElement => stack[stack.length - 1] ?? root;
  const n = html.length;

  const text = (s: string): void => {
    if (s.length === 0) return;
    const children = top().children;
    const decoded = decodeEntities(s);
    const last = children[children.length - 1];
    if (typeof last === 'string') children[children.length - 1] = last + decoded;
    else children.push(decoded);
  };

  // Index (in stack) of the nearest open `names` element, not looking past `barriers`.
  const findOpen = (names: ReadonlySet<string> | string, barriers: ReadonlySet<string>): number => {
    for (let k = stack.length - 1, seen = 0; k > 0 && seen < END_TAG_SEARCH; k--, seen++) {
      const tag = stack[k]?.tag ?? '';
      if (typeof names === 'string' ? tag === names : names.has(tag)) return k;
      if (barriers.has(tag)) return -1;
    }
    return -1;
  };
  const closeTo = (k: number): void => {
    if (k > 0) stack.length = k;
  };

  const open = (tag: string, attrs: Record<string, string>, selfClosing: boolean): void => {
    if (++elements > HTML_MAX_ELEMENTS) return;
    if (CLOSES_P.has(tag) && top().tag === 'p') stack.pop();
    if (tag === 'li') closeTo(findOpen('li', LIST_BARRIER));
    else if (tag === 'dt' || tag === 'dd') closeTo(findOpen(DT_DD, LIST_BARRIER));
    else if (tag === 'tr') closeTo(findOpen('tr', TABLE_BARRIER));
    else if (tag === 'td' || tag === 'th') closeTo(findOpen(CELLS, ROW_BARRIER));
    else if (tag === 'a') closeTo(findOpen('a', NO_BARRIER));
    const closed = VOID.has(tag) || (selfClosing && tag.includes(':'));
    const el: HtmlElement = { tag, attrs, children: closed ? NO_CHILDREN : [] };
    top().children.push(el);
    if (!closed && stack.length < HTML_MAX_DEPTH) stack.push(el);
  };

  const close = (tag: string): void => {
    if (tag === 'br') return open('br', NO_ATTRS, true);
    if (elements <= HTML_MAX_ELEMENTS) closeTo(findOpen(tag, NO_BARRIER));
  };

  let i = 0;
  while (i < n) {
    const lt = html.indexOf('<', i);
    if (lt < 0) {
      text(html.slice(i));
      break;
    }
    if (lt > i) text(html.slice(i, lt));
    const c = html.charCodeAt(lt + 1);
    if (html.startsWith('<!--', lt)) {
      const end = html.indexOf('-->', lt + 4);
      i = end < 0 ? n : end + 3;
    } else if (c === 33 /* ! */ || c === 63 /* ? */) {
      const end = html.indexOf('>', lt);
      i = end < 0 ? n : end + 1;
    } else if (c === 47 /* / */) {
      const nameEnd = tagNameEnd(html, lt + 2);
      if (nameEnd === lt + 2) {
        text('</');
        i = lt + 2;
        continue;
      }
      const end = html.indexOf('>', nameEnd);
      i = end < 0 ? n : end + 1;
      close(html.slice(lt + 2, nameEnd).toLowerCase());
    } else if (isAsciiLetter(c)) {
      const nameEnd = tagNameEnd(html, lt + 1);
      const tag = html.slice(lt + 1, nameEnd).toLowerCase();
      const parsed = readAttributes(html, nameEnd);
      i = parsed.end;
      if (RAW_TEXT.has(tag)) {
        const endTag = new RegExp(`</${tag}\\s*>`, 'gi');
        endTag.lastIndex = i;
        const m2 = endTag.exec(html);
        const content = html.slice(i, m2 ? m2.index : n);
        i = m2 ? endTag.lastIndex : n;
        if (++elements <= HTML_MAX_ELEMENTS) top().children.push({ tag, attrs: parsed.attrs, children: content ? [decodeEntities(content)] : [] });
      } else {
        open(tag, parsed.attrs, parsed.selfClosing);
      }
    } else {
      text('<');
      i = lt + 1;
    }
  }
  return root;
}

const NO_ATTRS: Record<string, string> = Object.freeze({}) as Record<string, string>;
const NO_CHILDREN: HtmlNode[] = Object.freeze([]) as unknown as HtmlNode[];
const LIST_BARRIER = new Set(['ul', 'ol', 'dl', 'table', 'td', 'th']);
const TABLE_BARRIER = new Set(['table']);
const ROW_BARRIER = new Set(['tr', 'table']);
const NO_BARRIER = new Set<string>();
const DT_DD = new Set(['dt', 'dd']);
const CELLS = new Set(['td', 'th']);

// End of a tag name ([A-Za-z][A-Za-z0-9:_-]*) starting at `from`; `from` when there is none.
function tagNameEnd(html: string, from: number): number {
  if (!isAsciiLetter(html.charCodeAt(from))) return from;
  let i = from + 1;
  for (;;) {
    const c = html.charCodeAt(i);
    if (isAsciiLetter(c) || (c >= 48 && c <= 58) || c === 95 || c === 45) i++;
    else return i;
  }
}

function isAsciiLetter(c: number): boolean {
  return (c >= 65 && c <= 90) || (c >= 97 && c <= 122);
}

function isSpace(c: number): boolean {
  return c === 32 || c === 9 || c === 10 || c === 13 || c === 12;
}

// Reads attributes from `pos` to the closing '>' in one forward pass.
function readAttributes(html: string, pos: number): { attrs: Record<string, string>; end: number; selfClosing: boolean } {
  let attrs: Record<string, string> = NO_ATTRS;
  const n = html.length;
  let i = pos;
  let selfClosing = false;
  while (i < n) {
    const c = html.charCodeAt(i);
    if (isSpace(c)) {
      i++;
      continue;
    }
    if (c === 62 /* > */) return { attrs, end: i + 1, selfClosing };
    if (c === 47 /* / */) {
      selfClosing = html.charCodeAt(i + 1) === 62;
      i++;
      continue;
    }
    const nameStart = i;
    while (i < n) {
      const d = html.charCodeAt(i);
      if (isSpace(d) || d === 62 || d === 47 || d === 61) break;
      i++;
    }
    if (i === nameStart) i++; // a stray character; never loop without progress
    const name = html.slice(nameStart, i).toLowerCase();
    while (i < n && isSpace(html.charCodeAt(i))) i++;
    let value = '';
    if (html.charCodeAt(i) === 61 /* = */) {
      i++;
      while (i < n && isSpace(html.charCodeAt(i))) i++;
      const q = html.charCodeAt(i);
      if (q === 34 || q === 39) {
        const close = html.indexOf(q === 34 ? '"' : "'", i + 1);
        const stop = close < 0 ? n : close;
        value = html.slice(i + 1, stop);
        i = close < 0 ? n : close + 1;
      } else {
        const start = i;
        while (i < n && !isSpace(html.charCodeAt(i)) && html.charCodeAt(i) !== 62) i++;
        value = html.slice(start, i);
      }
    }
    // "__proto__" and friends are valid attribute names; only own properties count
    if (name && name !== '__proto__' && !Object.hasOwn(attrs, name)) {
      if (attrs === NO_ATTRS) attrs = {};
      attrs[name] = decodeEntities(value, true);
    }
  }
  return { attrs, end: n, selfClosing };
}
