// The JSON text of message summaries, kept between list pages. An agent polls the newest page of
// its mailbox again and again; the rows behind it seldom change. A list page then reads only key
// rows (id, modseq, the sort column; message-query.ts `keys`) and writes each summary from here,
// reading full summary rows only for the messages it does not have.
//
// Why this is exact, not a cache that can go stale: a message's summary is a function of its row,
// and every change to a row after ingest sets `modseq` to a new change id (keywords and flags,
// moves; store/repos/messages.ts has the only two UPDATEs of messages). An entry is used only when
// the modseq just read from the store is the one it was written at, so a change made by this
// process, another process or the CLI is seen by the next page. Summaries with attachments are not
// kept: their download links carry short-lived tokens. Entries are only ever served for ids the
// page's own query returned for the caller's mailbox.
import { SUMMARY_CACHE_MAX } from '../../config/limits.ts';

interface Entry {
  modseq: number;
  json: string;
}

export class SummaryCache {
  private readonly entries = new Map<string, Entry>();
  private readonly max: number;

  constructor(max = SUMMARY_CACHE_MAX) {
    this.max = max;
  }

  /** The summary of message `id` as it was at `modseq`, or undefined. */
  get(id: string, modseq: number): string | undefined {
    const e = this.entries.get(id);
    return e !== undefined && e.modseq === modseq ? e.json : undefined;
  }

  set(id: string, modseq: number, json: string): void {
    if (this.max <= 0) return;
    const e = this.entries.get(id);
    if (e !== undefined) {
      e.modseq = modseq;
      e.json = json;
      return;
    }
    // First in, first out (a Map iterates in insertion order). A hit does not move an entry: the
    // pages polled most are refilled at once when their entries go.
    if (this.entries.size >= this.max) {
      const oldest = this.entries.keys().next();
      if (!oldest.done) this.entries.delete(oldest.value);
    }
    this.entries.set(id, { modseq, json });
  }

  get size(): number {
    return this.entries.size;
  }
}
