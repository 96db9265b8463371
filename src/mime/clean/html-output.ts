// Text builder for the HTML converter: collapses whitespace, turns block boundaries into at
// most the requested number of line breaks, and writes per-line prefixes ("> " for quotes,
// "- "/"  " for list items) so nested structures come out right in one forward pass.
// Output grows by string concatenation (V8 ropes) and collapsible spaces are held back until
// the next word, so nothing is ever rewritten: the builder is linear in its output.
import { HTML_MAX_PREFIX_DEPTH } from './limits.ts';

export class OutputBuilder {
  private buf = '';
  // Prefix entries: the text for an entry's first line, and for its later lines.
  private readonly first: string[] = [];
  private readonly rest: string[] = [];
  // restJoined[i] = rest[0] + ... + rest[i-1]
  private readonly restJoined: string[] = [''];
  private unusedFrom = 0; // entries from here on have not started a line yet
  private ignoredPrefixes = 0; // pushes beyond HTML_MAX_PREFIX_DEPTH
  private pending = 0; // line breaks requested by block boundaries, not yet written
  private newlines = 0; // line breaks written since the last content
  private atLineStart = true;
  private space = false; // a collapsible space waits for the next word
  private written = false; // any content in the document yet

  prefixDepth(): number {
    return this.first.length + this.ignoredPrefixes;
  }

  breakTo(n: number): void {
    if (n > this.pending) this.pending = n;
  }

  pushPrefix(first: string, rest: string): void {
    this.flushBreaks();
    if (this.first.length >= HTML_MAX_PREFIX_DEPTH) {
      this.ignoredPrefixes++;
      return;
    }
    this.first.push(first);
    this.rest.push(rest);
    this.restJoined.push((this.restJoined[this.restJoined.length - 1] ?? '') + rest);
  }

  popPrefix(): void {
    if (this.ignoredPrefixes > 0) {
      this.ignoredPrefixes--;
      return;
    }
    this.first.pop();
    this.rest.pop();
    this.restJoined.pop();
    if (this.unusedFrom > this.first.length) this.unusedFrom = this.first.length;
  }

  /** A hard line break (<br>, or a newline inside <pre>). */
  lineBreak(): void {
    this.flushBreaks();
    this.newline();
  }

  /** A line of its own holding only HISTORY_MARK (see normalize.ts). */
  mark(mark: string): void {
    this.breakTo(1);
    this.write(mark);
    this.breakTo(1);
  }

  /** Text content; collapsed like HTML unless `pre`. */
  text(input: string, pre: boolean): void {
    // the sender's own private-use U+E000 must never pass for a history mark
    const raw = input.includes('\uE000') ? input.replaceAll('\uE000', '') : input;
    if (pre) {
      const lines = raw.split('\n');
      for (let i = 0; i < lines.length; i++) {
        if (i > 0) this.lineBreak();
        const line = lines[i] ?? '';
        if (line.length > 0) this.write(line);
      }
      return;
    }
    const s = raw.replace(/[ \t\n\r\f]+/g, ' ');
    if (s === ' ') {
      if (!this.atLineStart) this.space = true;
      return;
    }
    if (s.length === 0) return;
    const lead = s.startsWith(' ');
    const trail = s.endsWith(' ');
    if (lead && !this.atLineStart) this.space = true;
    this.write(s.slice(lead ? 1 : 0, trail ? -1 : undefined));
    if (trail) this.space = true;
  }

  /** Cell separator in a joined table row (" | "). */
  separator(): void {
    this.space = false;
    this.write(' |');
    this.space = true;
  }

  toString(): string {
    return this.buf;
  }

  private prefix(): string {
    let p = this.restJoined[this.unusedFrom] ?? '';
    for (let i = this.unusedFrom; i < this.first.length; i++) p += this.first[i] ?? '';
    this.unusedFrom = this.first.length;
    return p;
  }

  private write(s: string): void {
    if (s.length === 0) return;
    this.flushBreaks();
    if (this.atLineStart) {
      this.buf += this.prefix();
      this.atLineStart = false;
      this.space = false;
    } else if (this.space) {
      this.buf += ' ';
    }
    this.space = false;
    this.buf += s;
    this.written = true;
    this.newlines = 0;
  }

  private newline(): void {
    // an empty line inside a quote still carries the quote marker (">")
    if (this.atLineStart && this.first.length > 0) this.buf += (this.restJoined[this.first.length] ?? '').trimEnd();
    this.buf += '\n';
    this.atLineStart = true;
    this.space = false;
    this.newlines++;
  }

  private flushBreaks(): void {
    if (this.pending === 0) return;
    if (this.written) while (this.newlines < this.pending) this.newline();
    this.pending = 0;
  }
}
