// Converts a mail's HTML part to the plain text an agent reads.
//
// Rendering rules (the fixtures in test/fixtures/clean follow them exactly):
// - <head>, <style>, <script>, <title>, hidden elements (display:none, visibility:hidden,
//   the hidden attribute: preheaders and Outlook-only copies) and comments are dropped.
// - Paragraph-like blocks (p, h1-h6, top-level ul/ol, table, blockquote, pre, hr) are
//   separated by one blank line; line-like blocks (div, tr, li, td in layout tables, Outlook
//   "MsoNormal" paragraphs, which have zero margins) start a new line; <br> breaks a line.
// - Links keep their target: "text (https://…)". When the text already is the URL (with or
//   without scheme), the full URL is written once. mailto: shows the address only when the
//   text differs from it ("Write to us (a@b.example)"); other schemes show only the text.
// - Images are dropped, except as the label of a link (their alt text). Tracking pixels
//   (1x1, hidden or known open-tracking paths) are dropped even there.
// - Lists: "- item" for ul, "1. item" for ol, nested lists indented by the marker width.
// - Blockquotes are prefixed "> " per level so the quote rules see them like text quotes.
// - A table row with two or more non-empty cells holding only inline content is one line,
//   cells joined by " | " (data tables: invoices, CI reports); other cells are blocks.
// - Quote containers (gmail_quote, divRplyFwdMsg, #appendonsend, yahoo_quoted,
//   moz-cite-prefix, protonmail_quote, AppleOriginalContents, OutlookMessageHeader) emit a
//   HISTORY_MARK line: the quote rules read it as "old mail may start here".
// - Entities are decoded; whitespace is collapsed except inside <pre>.
import { LINK_TEXT_MAX_CHARS } from './limits.ts';
import { HISTORY_MARK } from './normalize.ts';
import { parseHtml } from './html-parse.ts';
import type { HtmlElement, HtmlNode } from './html-parse.ts';
import { OutputBuilder } from './html-output.ts';

const SKIP = new Set(['head', 'script', 'style', 'title', 'template', 'noscript', 'svg', 'math', 'object', 'iframe', 'audio', 'video', 'canvas', 'select', 'textarea', 'input', 'meta', 'link', 'base', 'xmp', 'noembed', 'noframes', 'plaintext']);
const PARAGRAPH = new Set(['p', 'h1', 'h2', 'h3', 'h4', 'h5', 'h6', 'table', 'pre', 'dl', 'figure', 'address']);
const LINE = new Set(['div', 'section', 'article', 'header', 'footer', 'main', 'nav', 'aside', 'center', 'form', 'fieldset', 'dt', 'dd', 'caption', 'figcaption', 'legend', 'details', 'summary', 'body', 'html', 'tr', 'td', 'th', 'li']);
const BLOCKISH = new Set([...PARAGRAPH, ...LINE, 'br', 'hr', 'ul', 'ol', 'blockquote', 'li', 'tbody', 'thead', 'tfoot']);
const MARK_CLASS = /(?:^|\s)(?:gmail_quote(?:_container)?|gmail_extra|yahoo_quoted|moz-cite-prefix|protonmail_quote|AppleOriginalContents|OutlookMessageHeader|zmail_extra)(?:\s|$)/;
const MARK_ID = /(?:^|_)(?:divRplyFwdMsg|appendonsend|mail-editor-reference-message-container)$/;
const HIDDEN_STYLE = /display\s*:\s*none|visibility\s*:\s*hidden/i;
const TRACKING_SRC = /\/(?:open|track\/open|wf\/open|e1t\/o|o|pixel|beacon|trk|t\/o)(?:\.gif|\.png|\.php|\/|\?|$)|[?&](?:open|openid)=|\/open\/|\/o\/[\w-]+\.(?:gif|png)/i;

type Ctx = { pre: number; inLink: boolean; inMark: boolean; listDepth: number };

function isHidden(el: HtmlElement): boolean {
  return Object.hasOwn(el.attrs, 'hidden') || HIDDEN_STYLE.test(el.attrs.style ?? '');
}

function pixelSize(value: string | undefined): number | null {
  if (value === undefined) return null;
  const m = /^\s*(\d+(?:\.\d+)?)/.exec(value);
  return m ? Number(m[1]) : null;
}

function isTrackingPixel(img: HtmlElement): boolean {
  if (isHidden(img)) return true;
  const style = img.attrs.style ?? '';
  const w = pixelSize(img.attrs.width) ?? pixelSize(/(?:^|;)\s*width\s*:\s*([\d.]+)px/i.exec(style)?.[1]);
  const h = pixelSize(img.attrs.height) ?? pixelSize(/(?:^|;)\s*height\s*:\s*([\d.]+)px/i.exec(style)?.[1]);
  if ((w !== null && w <= 1) || (h !== null && h <= 1)) return true;
  return TRACKING_SRC.test(img.attrs.src ?? '');
}

/** Visible text of an element (with link-image alt text), collapsed, cut at `max` chars. */
function visibleText(node: HtmlNode, max: number, acc: { s: string }): void {
  if (acc.s.length >= max) return;
  if (typeof node === 'string') {
    acc.s += node;
    return;
  }
  if (SKIP.has(node.tag) || isHidden(node)) return;
  if (node.tag === 'img') {
    if (!isTrackingPixel(node)) acc.s += ` ${node.attrs.alt ?? ''} `;
    return;
  }
  for (const child of node.children) visibleText(child, max, acc);
}

function textOf(el: HtmlElement): string {
  const acc = { s: '' };
  visibleText(el, LINK_TEXT_MAX_CHARS, acc);
  return acc.s.replace(/[\s\u00A0\u200B-\u200D\uFEFF]+/g, ' ').trim();
}

function comparableUrl(s: string): string {
  return s.trim().replace(/^[a-z][a-z0-9+.-]*:(?:\/\/)?/i, '').replace(/^www\./i, '').replace(/\/+$/, '').toLowerCase();
}

export class HtmlToText {
  private readonly out = new OutputBuilder();

  convert(html: string): string {
    const root = parseHtml(html);
    this.children(root, { pre: 0, inLink: false, inMark: false, listDepth: 0 });
    return this.out.toString();
  }

  // Contains an element that forces a line break (so the cell cannot join a " | " row).
  private hasBlock(el: HtmlElement): boolean {
    el.hasBlock ??= el.children.some((c) => typeof c !== 'string' && !SKIP.has(c.tag) && !isHidden(c) && (BLOCKISH.has(c.tag) || this.hasBlock(c)));
    return el.hasBlock;
  }

  // Renders to something visible (text, a link, a non-pixel image inside a link).
  private hasText(el: HtmlElement): boolean {
    el.hasText ??= el.children.some((c) => {
      if (typeof c === 'string') return /[^\s\u00A0\u200B-\u200D\uFEFF]/.test(c);
      if (SKIP.has(c.tag) || isHidden(c)) return false;
      if (c.tag === 'a' && /^(?:https?|mailto):/i.test((c.attrs.href ?? '').trim())) return true;
      return this.hasText(c);
    });
    return el.hasText;
  }

  private children(el: HtmlElement, ctx: Ctx): void {
    for (const child of el.children) {
      if (typeof child === 'string') this.out.text(child, ctx.pre > 0);
      else this.element(child, ctx);
    }
  }

  private block(el: HtmlElement, ctx: Ctx, breaks: 1 | 2): void {
    this.out.breakTo(breaks);
    this.children(el, ctx);
    this.out.breakTo(breaks);
  }

  private element(el: HtmlElement, ctx: Ctx): void {
    const tag = el.tag;
    if (SKIP.has(tag) || isHidden(el)) return;
    if (!ctx.inMark && tag !== 'blockquote' && this.out.prefixDepth() === 0 && (MARK_CLASS.test(el.attrs.class ?? '') || MARK_ID.test(el.attrs.id ?? ''))) {
      this.out.mark(HISTORY_MARK);
      this.block(el, { ...ctx, inMark: true }, 1);
      return;
    }
    switch (tag) {
      case 'br':
        return this.out.lineBreak();
      case 'hr':
        return this.out.breakTo(2);
      case 'img':
        if (ctx.inLink && !isTrackingPixel(el) && el.attrs.alt) this.out.text(el.attrs.alt, false);
        return;
      case 'a':
        return this.link(el, ctx);
      case 'blockquote':
        this.out.breakTo(2);
        this.out.pushPrefix('> ', '> ');
        this.children(el, ctx);
        this.out.popPrefix();
        return this.out.breakTo(2);
      case 'ul':
      case 'ol':
        return this.list(el, ctx);
      case 'pre':
        return this.block(el, { ...ctx, pre: ctx.pre + 1 }, 2);
      case 'tr':
        return this.row(el, ctx);
      case 'p':
        return this.block(el, ctx, /(?:^|\s)MsoNormal(?:\s|$)/.test(el.attrs.class ?? '') ? 1 : 2);
      default:
        if (PARAGRAPH.has(tag)) return this.block(el, ctx, 2);
        if (LINE.has(tag)) return this.block(el, ctx, 1);
        return this.children(el, ctx);
    }
  }

  private list(el: HtmlElement, ctx: Ctx): void {
    const breaks = ctx.listDepth === 0 ? 2 : 1;
    const ordered = el.tag === 'ol';
    let n = Number.parseInt(el.attrs.start ?? '1', 10);
    if (!Number.isFinite(n)) n = 1;
    this.out.breakTo(breaks);
    const inner = { ...ctx, listDepth: ctx.listDepth + 1 };
    for (const child of el.children) {
      if (typeof child === 'string') {
        this.out.text(child, false);
        continue;
      }
      if (child.tag !== 'li' || SKIP.has(child.tag) || isHidden(child)) {
        this.element(child, inner);
        continue;
      }
      const marker = ordered ? `${n++}. ` : '- ';
      this.out.breakTo(1);
      this.out.pushPrefix(marker, ' '.repeat(marker.length));
      this.children(child, inner);
      this.out.popPrefix();
      this.out.breakTo(1);
    }
    this.out.breakTo(breaks);
  }

  private row(tr: HtmlElement, ctx: Ctx): void {
    const cells = tr.children.filter((c): c is HtmlElement => typeof c !== 'string' && (c.tag === 'td' || c.tag === 'th') && !isHidden(c));
    const filled = cells.filter((c) => this.hasText(c));
    this.out.breakTo(1);
    if (filled.length >= 2 && filled.every((c) => !this.hasBlock(c))) {
      filled.forEach((cell, i) => {
        if (i > 0) this.out.separator();
        this.children(cell, ctx);
      });
    } else {
      for (const child of tr.children) {
        if (typeof child === 'string') this.out.text(child, ctx.pre > 0);
        else if (child.tag === 'td' || child.tag === 'th') this.block(child, ctx, 1);
        else this.element(child, ctx);
      }
    }
    this.out.breakTo(1);
  }

  private link(a: HtmlElement, ctx: Ctx): void {
    if (ctx.inLink) return this.children(a, ctx);
    const href = (a.attrs.href ?? '').replace(/[\t\n\r]/g, '').trim();
    const inner = { ...ctx, inLink: true };
    const text = textOf(a);
    if (/^https?:\/\//i.test(href)) {
      if (text === '') {
        // an image-only link whose images are all tracking pixels is itself tracking
        const images = a.children.filter((c): c is HtmlElement => typeof c !== 'string' && c.tag === 'img');
        if (images.length === 0 || !images.every(isTrackingPixel)) this.out.text(` ${href} `, false);
        return;
      }
      if (comparableUrl(text) === comparableUrl(href)) return this.out.text(href, false);
      this.children(a, inner);
      return this.out.text(` (${href})`, false);
    }
    if (/^mailto:/i.test(href)) {
      let address = href.slice(7).split('?')[0] ?? '';
      try {
        address = decodeURIComponent(address);
      } catch {
        // keep the raw form when the sender's percent-encoding is broken
      }
      if (text === '') return this.out.text(address, false);
      this.children(a, inner);
      if (comparableUrl(text) !== address.toLowerCase()) this.out.text(` (${address})`, false);
      return;
    }
    this.children(a, inner);
  }
}

/** HTML part to readable text (see the module comment for the rules). */
export function htmlToText(html: string): string {
  return new HtmlToText().convert(html);
}
