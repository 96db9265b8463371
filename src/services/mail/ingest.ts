// The one write path for mail (SMTP inbound, local delivery, API send-to-Sent, IMAP APPEND later):
// parse once, stage the raw blob, then in one transaction per batch write the blob (when the
// database keeps it; a blob file is fsync'd before), the index row,
// folder membership with IMAP UIDs, keywords, full-text entry, thread link, quota and change log.
// Concurrent deliveries are grouped into one transaction (one fsync on SQLite); no caller is told
// "stored" before its batch has committed.
//
// A delivery is plain data (IngestJob), so it can be written by another thread: with SQLite, the
// app gives ingest a writer thread (app/ingest-writer.ts), where another IngestService queues and
// batches the jobs (enqueue) on a second connection, off the event loop that speaks SMTP.
// Deliveries whose writes include a caller's own (inTransaction: a send's queue rows) are written
// here, on the store's connection.
import { iso } from '../../core/clock.ts';
import { AppError } from '../../core/errors.ts';
import { newId } from '../../core/ids.ts';
import { parseMessage, type ParsedMessage } from '../../mime/parse.ts';
import { threadKeys } from '../../mime/threading.ts';
import { foldForSearch } from '../../store/repos/message-query.ts';
import type { ChangeEntry, EventRow, IncomingLogRow, MailboxRow, MessageInsert, MessageRow, Repos, StagedBlob } from '../../store/index.ts';
import type { ServiceContext } from '../context.ts';
import type { EmitInput, EventsService } from '../events.ts';
import { summaryFields } from './views.ts';
import { acceptedRows } from './incoming-logs.ts';
import type { FolderRole } from './folders.ts';

/** Subject-only threading joins a thread only if its last message is this recent. */
export const SUBJECT_THREAD_WINDOW_MS = 30 * 24 * 3600_000;
/** Deliveries committed together at most (bounds one transaction's work and latency). */
export const INGEST_BATCH_MAX = 128;
/** Body text kept in the full-text index per message. */
export const FTS_BODY_MAX_CHARS = 200_000;

export interface IngestTarget {
  mailboxId: string;
  /** Folder by role; spam overrides to the spam folder. Default inbox. */
  folderRole?: FolderRole;
  keywords?: string[];
  /** The envelope recipients that led here (reported in message.received events). */
  recipients?: string[];
}

export interface IngestInput {
  raw: Buffer;
  /** parseMessage(raw), when the caller has it already (inbound SMTP parses in a worker thread). */
  parsed?: ParsedMessage;
  targets: IngestTarget[];
  receivedAt?: number;
  spam?: { isSpam: boolean; score: number | null };
  authResults?: string | null;
  /**
   * Inbound mail: an accepted incoming-log row for each stored copy, written in the same
   * transaction as the messages; sender is the envelope sender (null for <>).
   */
  incomingLog?: { sender: string | null };
  /** Refuse delivery to a mailbox whose quota this message would exceed (inbound mail); sent copies are always kept. */
  enforceQuota?: boolean;
  /** Inbound mail: emit message.received / message.received.spam for each stored copy, with the envelope sender. */
  announce?: { sender: string | null };
  /** More writes that must commit with the messages (a send's submission and queue rows). */
  inTransaction?: (tx: Repos, delivered: IngestedMessage[], parsed: ParsedMessage) => Promise<void>;
}

export interface IngestedMessage {
  mailboxId: string;
  messageId: string;
  threadId: string;
  folderId: string;
}

export interface IngestResult {
  blobSha256: string;
  parsed: ParsedMessage;
  delivered: IngestedMessage[];
  /** Targets refused, with the reason code (over_quota, mailbox_inactive). */
  refused: { mailboxId: string; reason: 'over_quota' | 'mailbox_inactive' }[];
  /** The incoming-log rows committed with the messages (when the caller asked for them). */
  incomingLogs: IncomingLogRow[];
}

/**
 * What a delivery stores of its parsed message, whatever the mailbox: the row's columns as
 * written, the thread keys and the folded full-text fields. Made where the message was parsed
 * (the SMTP event loop), so the writer thread, whose every microsecond each batch waits for, gets
 * strings to bind instead of a parse to clone, serialise and fold.
 */
export interface PreparedMessage {
  columns: Pick<
    MessageRow,
    | 'sent_at'
    | 'subject'
    | 'subject_sort'
    | 'from_sort'
    | 'to_sort'
    | 'cc_text'
    | 'bcc_text'
    | 'headers_text'
    | 'addresses'
    | 'preview'
    | 'has_attachments'
    | 'attachments'
    | 'rfc_message_id'
    | 'in_reply_to'
    | 'references'
    | 'headers'
    | 'imap'
    | 'text_body'
    | 'html_body'
  >;
  /** threadKeys: the normalised subject ('' for none), the ids a reply names, whether it is a reply or forward. */
  subjectKey: string;
  messageIds: string[];
  isReplyish: boolean;
  fromEmail: string | null;
  /** Folded for the full-text index (foldForSearch). */
  search: { subject: string; addresses: string; body: string };
}

/** The stored form of a parsed message (see PreparedMessage). */
export function prepareMessage(parsed: ParsedMessage): PreparedMessage {
  const keys = threadKeys(parsed);
  const addresses = { from: parsed.from, sender: parsed.sender, to: parsed.to, cc: parsed.cc, bcc: parsed.bcc, reply_to: parsed.reply_to };
  const addressSearch = [parsed.from ? [parsed.from] : [], parsed.to, parsed.cc, parsed.bcc, parsed.reply_to].flat().map((a) => `${a.name ?? ''} ${a.email}`).join(' ');
  const bodyText = (parsed.text_body ?? parsed.preview ?? '').slice(0, FTS_BODY_MAX_CHARS);
  return {
    columns: {
      sent_at: parsed.sent_at,
      subject: parsed.subject,
      subject_sort: lower(parsed.subject),
      from_sort: parsed.from ? addressText([parsed.from]) : '',
      to_sort: addressText(parsed.to),
      cc_text: addressText(parsed.cc),
      bcc_text: addressText(parsed.bcc),
      headers_text: `\n${parsed.headers.map((h) => `${lower(h.name)}: ${lower(h.value).replace(/[\r\n]+/g, ' ')}`).join('\n')}\n`,
      addresses: JSON.stringify(addresses),
      preview: parsed.preview,
      has_attachments: parsed.has_attachments ? 1 : 0,
      attachments: JSON.stringify(parsed.attachments),
      rfc_message_id: parsed.message_id,
      in_reply_to: parsed.in_reply_to,
      references: JSON.stringify(parsed.references),
      headers: JSON.stringify(parsed.headers),
      imap: JSON.stringify(parsed.imap),
      text_body: parsed.text_body,
      html_body: parsed.html_body,
    },
    subjectKey: keys.subject_key ?? '',
    messageIds: keys.message_ids,
    isReplyish: keys.is_reply_or_forward || parsed.in_reply_to !== null,
    fromEmail: parsed.from?.email ?? null,
    search: { subject: foldForSearch(parsed.subject ?? ''), addresses: foldForSearch(addressSearch), body: foldForSearch(bodyText) },
  };
}

/** One delivery as a batch's transaction needs it: plain data, which a writer thread can be sent. */
export interface IngestJob {
  message: PreparedMessage;
  /** The staged blob: its bytes (`inline`) when the transaction writes them. */
  blob: { sha256: string; size: number; inline: Buffer | null };
  targets: IngestTarget[];
  /** Epoch ms. */
  receivedAt: number;
  spam?: { isSpam: boolean; score: number | null };
  authResults?: string | null;
  enforceQuota?: boolean;
  announce?: { sender: string | null };
  incomingLog?: { sender: string | null };
}

/** What a job's transaction wrote. */
export interface JobWritten {
  delivered: IngestedMessage[];
  refused: IngestResult['refused'];
  incomingLogs: IncomingLogRow[];
  /** The events it appended (a writer thread's caller dispatches them). */
  events: EventRow[];
}

/** cause: the error itself, within one thread (a caller's AppError keeps its class); never posted. */
export type JobOutcome = { ok: true; written: JobWritten } | { ok: false; error: string; cause?: unknown };

function failed(err: unknown): JobOutcome {
  return { ok: false, error: (err as Error).message, cause: err };
}

/** Writes deliveries somewhere else than on the store's connection (the SQLite writer thread). */
export interface IngestWriter {
  /** Writes the job (batched with others there); resolves once it is durable, or with why not. */
  submit(job: IngestJob): Promise<JobOutcome>;
  /** After the last delivery: waits for those in flight, then lets go of its connection. */
  close(): Promise<void>;
}

interface Job {
  job: IngestJob;
  /** The caller's own writes (IngestInput.inTransaction, given the parse); none for a job another thread staged. */
  inTransaction: ((tx: Repos, delivered: IngestedMessage[]) => Promise<void>) | undefined;
  /** The staged blob this process synced and releases (none for a job another thread staged). */
  blob: StagedBlob | null;
  settle: (o: JobOutcome) => void;
}

const lower = (s: string | null | undefined): string => (s ?? '').toLowerCase();

/** Folders and quotas a transaction changed: one change-log entry each, however many messages. */
class Touched {
  readonly folders = new Map<string, string>();
  readonly quotas = new Map<string, string>();
  /** The incoming-log rows of the transaction's deliveries: one INSERT for them all (a round trip a message on PostgreSQL). */
  readonly incomingLogs: IncomingLogRow[] = [];
  /** The events of the transaction's deliveries, appended together at its end, each into its job's list. */
  readonly events: { input: EmitInput; into: EventRow[] }[] = [];
  /** Thread id → its mailbox and whether this transaction created it (then one 'created' covers later messages too). */
  readonly threads = new Map<string, { mailboxId: string; created: boolean }>();
  /**
   * The transaction's mailboxes as read at its start, with the bytes its deliveries added since
   * (quota checks see them): one read for a batch instead of one a delivery (a round trip each, in
   * the one transaction at a time that PostgreSQL's ingest writes).
   */
  private readonly mailboxes = new Map<string, MailboxRow | null>();

  async preload(tx: Repos, ids: Iterable<string>): Promise<void> {
    const missing = [...new Set(ids)].filter((id) => !this.mailboxes.has(id));
    for (const row of await tx.mailboxes.getMany(missing)) this.mailboxes.set(row.id, { ...row });
    for (const id of missing) if (!this.mailboxes.has(id)) this.mailboxes.set(id, null);
  }

  async mailbox(tx: Repos, id: string): Promise<MailboxRow | null> {
    if (!this.mailboxes.has(id)) await this.preload(tx, [id]);
    return this.mailboxes.get(id) ?? null;
  }

  thread(id: string, mailboxId: string, created: boolean): void {
    if (!this.threads.has(id)) this.threads.set(id, { mailboxId, created });
  }

  /** The change-log entries, appended together (their ids are nobody's modseq). */
  async record(tx: Repos): Promise<void> {
    const entries: ChangeEntry[] = [];
    for (const [id, t] of this.threads) entries.push({ mailboxId: t.mailboxId, type: 'thread', objectId: id, kind: t.created ? 'created' : 'updated' });
    for (const [folderId, mailboxId] of this.folders) entries.push({ mailboxId, type: 'folder', objectId: folderId, kind: 'updated' });
    for (const [mailboxId, teamId] of this.quotas) entries.push({ teamId, mailboxId, type: 'quota', objectId: mailboxId, kind: 'updated' });
    await tx.changes.appendMany(entries);
    await tx.incomingLogs.insert(this.incomingLogs);
  }
}

/**
 * The MailboxRealtimeEvent of a received message, kept with the event for SSE replay. The body
 * (realtime-body.ts) and attachment metadata (download links are short-lived) are added when it is
 * sent.
 */
function realtimeEvent(row: MessageRow, folderId: string, mailbox: MailboxRow, isSpam: boolean, recipients: string[], sender: string | null): Record<string, unknown> {
  const summary = summaryFields(row, [folderId]);
  return {
    event_type: isSpam ? 'message.received.spam' : 'message.received',
    mailbox_id: mailbox.id,
    team_public_id: mailbox.team_id,
    occurred_at: row.received_at,
    message_id: row.rfc_message_id,
    message_id_kind: row.rfc_message_id ? 'rfc5322' : null,
    sender,
    recipients,
    is_spam: isSpam,
    message: {
      ...summary,
      rfc5322_message_id: row.rfc_message_id,
      body: null,
    },
  };
}

function addressText(list: { email: string; name: string | null }[]): string {
  return list.map((a) => lower(a.name ? `${a.name} <${a.email}>` : a.email)).join(', ');
}

export class IngestService {
  private readonly ctx: ServiceContext;
  private queue: Job[] = [];
  /** A batch is being written (its rows, up to COMMIT). */
  private writing = false;
  private flushScheduled = false;
  private readonly listeners: ((r: IngestResult) => void)[] = [];

  private readonly events: EventsService;

  constructor(ctx: ServiceContext, events: EventsService) {
    this.ctx = ctx;
    this.events = events;
  }

  /** Called after each committed delivery (the event bus hangs off this). */
  onCommitted(listener: (r: IngestResult) => void): void {
    this.listeners.push(listener);
  }

  async deliver(input: IngestInput): Promise<IngestResult> {
    if (input.targets.length === 0) throw new AppError('invalid_parameter', 'no recipients to deliver to');
    const parsed = input.parsed ?? (await parseMessage(input.raw));
    const message = prepareMessage(parsed);
    const blob = await this.ctx.store.blobs.stage(input.raw);
    const job: IngestJob = {
      message,
      blob: { sha256: blob.sha256, size: blob.size, inline: blob.inline },
      targets: input.targets,
      receivedAt: input.receivedAt ?? this.ctx.clock.now(),
      ...(input.spam ? { spam: input.spam } : {}),
      ...(input.authResults !== undefined ? { authResults: input.authResults } : {}),
      ...(input.enforceQuota ? { enforceQuota: true } : {}),
      ...(input.announce ? { announce: input.announce } : {}),
      ...(input.incomingLog ? { incomingLog: input.incomingLog } : {}),
    };
    let outcome: JobOutcome;
    if (this.writer && !input.inTransaction) {
      // The blob file (if any) reaches the disk before the writer thread commits the rows naming it.
      try {
        await this.ctx.store.blobs.sync([blob]);
        outcome = await this.writer.submit(job);
      } finally {
        await this.ctx.store.blobs.release([blob]);
      }
    } else {
      outcome = await new Promise<JobOutcome>((settle) => {
        const own = input.inTransaction;
        this.queue.push({ job, inTransaction: own && ((tx, delivered) => own(tx, delivered, parsed)), blob, settle });
        this.scheduleFlush();
      });
    }
    if (!outcome.ok) throw outcome.cause ?? new Error(outcome.error);
    const result: IngestResult = { blobSha256: blob.sha256, parsed, delivered: outcome.written.delivered, refused: outcome.written.refused, incomingLogs: outcome.written.incomingLogs };
    for (const l of this.listeners) {
      try {
        l(result);
      } catch (err) {
        this.ctx.log.error({ event: 'ingest.listener_failed', err: (err as Error).message });
      }
    }
    return result;
  }

  /**
   * Starts a batch on the next macrotask, not at once: the deliveries whose parsing and staging
   * finish in the meantime (their I/O callbacks run before setImmediate) join the same
   * transaction. One batch is written at a time, but the next one starts as soon as the previous
   * one has written its rows, not once its commit is flushed: SQLite hands the connection on at
   * COMMIT (store/sqlite/group-commit.ts), so a flush on its way to the disk and the next batch's
   * work overlap, and the deliveries that arrived during the flush are the next batch.
   */
  private scheduleFlush(): void {
    if (this.flushScheduled || this.writing || this.queue.length === 0) return;
    this.flushScheduled = true;
    setImmediate(() => {
      this.flushScheduled = false;
      if (this.writing || this.queue.length === 0) return;
      this.writing = true;
      const batch = this.queue.splice(0, INGEST_BATCH_MAX);
      let signalled = false;
      const written = (): void => {
        if (signalled) return;
        signalled = true;
        this.writing = false;
        for (const l of this.writtenListeners) l(batch.length);
        this.scheduleFlush();
      };
      void this.runBatch(batch, written).finally(written);
    });
  }

  /**
   * Writes a job another thread staged (the writer thread's side of IngestWriter.submit), batched
   * with the others waiting; resolves once it is durable.
   */
  enqueue(job: IngestJob): Promise<JobOutcome> {
    return new Promise<JobOutcome>((settle) => {
      this.queue.push({ job, inTransaction: undefined, blob: null, settle });
      this.scheduleFlush();
    });
  }

  private readonly writtenListeners: ((jobs: number) => void)[] = [];

  /** Hears each batch once no more of it is to be written (its COMMIT has run), with its size. */
  onBatchWritten(fn: (jobs: number) => void): void {
    this.writtenListeners.push(fn);
  }

  private writer: IngestWriter | null = null;

  /** From now on, deliveries without writes of their callers go to `writer` (null: back to this connection). */
  useWriter(writer: IngestWriter | null): void {
    this.writer = writer;
  }

  /** The writer batches go to, when not the store's connection. */
  get writerInUse(): IngestWriter | null {
    return this.writer;
  }

  /** Before the store closes: deliveries from now on are written on the store's connection; the writer is closed. */
  async close(): Promise<void> {
    const writer = this.writer;
    this.writer = null;
    await writer?.close();
  }

  /** Writes and commits one batch; calls written() once its COMMIT has run (the next batch may start). */
  private async runBatch(batch: Job[], written: () => void): Promise<void> {
    const blobs = batch.flatMap((j) => (j.blob ? [j.blob] : []));
    try {
      // Every blob file of the batch reaches the disk, together, before the rows that name them
      // commit; blobs the database keeps are written by the transaction itself.
      await this.ctx.store.blobs.sync(blobs);
    } catch (err) {
      await this.ctx.store.blobs.release(blobs);
      for (const job of batch) job.settle(failed(err));
      return;
    }
    let outcomes: JobOutcome[];
    try {
      outcomes = await this.writeBatch(batch, written);
    } catch (err) {
      outcomes = batch.map(() => failed(err));
    }
    batch.forEach((job, i) => job.settle(outcomes[i] ?? { ok: false, error: 'ingest: no outcome' }));
    await this.ctx.store.blobs.release(blobs);
  }

  /**
   * Writes a batch on this service's store: one transaction, or, when that fails, one per job so
   * that one bad delivery does not fail the others. Calls written() once no more of it is to be
   * written; resolves once it is durable.
   */
  private async writeBatch(batch: Job[], written: () => void): Promise<JobOutcome[]> {
    try {
      return await this.ctx.store.transaction(async (tx) => {
        const touched = new Touched();
        await touched.preload(tx, batch.flatMap((j) => j.job.targets.map((t) => t.mailboxId)));
        const out: JobOutcome[] = [];
        for (const j of batch) out.push({ ok: true, written: await this.write(tx, j, touched) });
        await this.appendEvents(tx, touched);
        await touched.record(tx);
        await tx.blobRows.insert(batch.filter((_, i) => (out[i] as { written: JobWritten }).written.delivered.length > 0).map((j) => j.job.blob));
        tx.afterWrite(written);
        return out;
      });
    } catch (err) {
      // One bad job must not fail the others: retry them one by one.
      this.ctx.log.warn({ event: 'ingest.batch_retry', size: batch.length, err: (err as Error).message });
    }
    const out: JobOutcome[] = [];
    for (const j of batch) {
      const { job } = j;
      try {
        out.push({
          ok: true,
          written: await this.ctx.store.transaction(async (tx) => {
            const touched = new Touched();
            const r = await this.write(tx, j, touched);
            await this.appendEvents(tx, touched);
            await touched.record(tx);
            if (r.delivered.length > 0) await tx.blobRows.insert([job.blob]);
            return r;
          }),
        });
      } catch (err) {
        out.push(failed(err));
      }
    }
    written();
    return out;
  }

  /** The transaction's events (Touched.events), in one append: each job's list gets its rows. */
  private async appendEvents(tx: Repos, touched: Touched): Promise<void> {
    const rows = await this.events.emitMany(tx, touched.events.map((e) => e.input));
    rows.forEach((row, i) => touched.events[i]!.into.push(row));
  }

  private async write(tx: Repos, { job: input, inTransaction }: Job, touched: Touched): Promise<JobWritten> {
    const { message } = input;
    const { columns, subjectKey } = message;
    const receivedAt = iso(input.receivedAt);
    const size = input.blob.size;
    const delivered: IngestedMessage[] = [];
    const events: EventRow[] = [];
    const logged: Parameters<typeof acceptedRows>[0] = [];
    const refused: IngestResult['refused'] = [];

    for (const target of input.targets) {
      const mailbox = await touched.mailbox(tx, target.mailboxId);
      if (!mailbox || mailbox.status !== 'active') {
        refused.push({ mailboxId: target.mailboxId, reason: 'mailbox_inactive' });
        continue;
      }
      if (input.enforceQuota && mailbox.quota_bytes !== null && mailbox.used_bytes + size > mailbox.quota_bytes) {
        refused.push({ mailboxId: mailbox.id, reason: 'over_quota' });
        continue;
      }
      const keywords = [...new Set((target.keywords ?? []).map((k) => k.toLowerCase()))].sort();
      const seen = keywords.includes('$seen') ? 1 : 0;
      const hasAttachments = columns.has_attachments === 1 ? 1 : 0;
      const role: FolderRole = input.spam?.isSpam ? 'spam' : (target.folderRole ?? 'inbox');
      // The folder's UID and its totals: one statement of their own, or (PostgreSQL) the message's (uid null).
      const folder = await tx.folders.entryByRole(mailbox.id, role, seen === 1 ? 0 : 1);
      if (!folder) throw new Error(`mailbox ${mailbox.id} has no ${role} folder`);

      // Thread: a referenced message's thread, else a recent thread with the same subject (replies only), else new.
      let threadId: string | null = null;
      if (message.messageIds.length > 0) {
        const found = await tx.messages.byRfcMessageIds(mailbox.id, message.messageIds);
        for (const id of message.messageIds) {
          const hit = found.find((f) => f.rfc_message_id === id);
          if (hit) {
            threadId = hit.thread_id;
            break;
          }
        }
      }
      if (threadId === null && message.isReplyish && subjectKey !== '') {
        const since = iso(Date.parse(receivedAt) - SUBJECT_THREAD_WINDOW_MS);
        threadId = (await tx.threads.bySubject(mailbox.id, subjectKey, since))?.id ?? null;
      }
      const newThread = threadId === null;
      let thread: MessageInsert['thread'];
      if (threadId === null) {
        threadId = newId('thr');
        // Made for this message: written and counted with it (MessageInsert.thread).
        thread = {
          row: { id: threadId, mailbox_id: mailbox.id, subject_key: subjectKey, subject: columns.subject, last_received_at: receivedAt, created_at: receivedAt },
          first: { unread: seen === 1 ? 0 : 1, attachments: hasAttachments },
        };
        touched.thread(threadId, mailbox.id, true);
      } else {
        await tx.threads.touch(threadId, receivedAt);
        touched.thread(threadId, mailbox.id, false);
      }

      const messageId = newId('msg');
      const row: MessageRow = {
          id: messageId,
          mailbox_id: mailbox.id,
          thread_id: threadId,
          blob_sha256: input.blob.sha256,
          size_bytes: size,
          received_at: receivedAt,
          ...columns,
          sent_sort: columns.sent_at ?? receivedAt,
          is_spam: input.spam?.isSpam ? 1 : 0,
          spam_score: input.spam?.score ?? null,
          auth_results: input.authResults ?? null,
          keywords: JSON.stringify(keywords),
          seen,
          flagged: keywords.includes('$flagged') ? 1 : 0,
          answered: keywords.includes('$answered') ? 1 : 0,
          draft: keywords.includes('$draft') ? 1 : 0,
          modseq: 0,
          created_at: receivedAt,
          updated_at: receivedAt,
      };
      await tx.messages.insert({
        row,
        folderIds: [folder.id],
        uids: folder.uid === null ? new Map() : new Map([[folder.id, folder.uid]]),
        search: message.search,
        counted: { folders: folder.uid !== null, thread: newThread },
        ...(thread ? { thread } : {}),
        // Quota accounting moves with the message (one statement on PostgreSQL).
        usedBytes: size,
      });
      if (input.announce) {
        const isSpam = input.spam?.isSpam === true;
        // Appended with the batch's other events, at its end (appendEvents).
        touched.events.push({
          into: events,
          input: {
            type: isSpam ? 'message.received.spam' : 'message.received',
            teamId: mailbox.team_id,
            mailboxId: mailbox.id,
            occurredAt: Date.parse(receivedAt),
            data: {
              is_spam: isSpam,
              mailbox_id: mailbox.id,
              message_id: columns.rfc_message_id,
              message_id_kind: columns.rfc_message_id ? 'rfc5322' : null,
              recipients: target.recipients ?? [mailbox.email],
              sender: input.announce.sender ?? message.fromEmail,
            },
            realtime: realtimeEvent(row, folder.id, mailbox, isSpam, target.recipients ?? [mailbox.email], input.announce.sender ?? message.fromEmail),
          },
        });
      }
      if (input.incomingLog) {
        logged.push({
          teamId: mailbox.team_id,
          mailboxId: mailbox.id,
          mailboxEmail: mailbox.email,
          recipients: target.recipients ?? [mailbox.email],
          fromEmail: message.fromEmail ?? input.incomingLog.sender,
          subject: columns.subject,
          rfcMessageId: columns.rfc_message_id,
          sizeBytes: size,
          isSpam: input.spam?.isSpam === true,
          receivedAt: input.receivedAt,
        });
      }
      // Written with the message (MessageInsert.usedBytes); later deliveries of the transaction check against it.
      mailbox.used_bytes += size;
      touched.folders.set(folder.id, mailbox.id);
      touched.quotas.set(mailbox.id, mailbox.team_id);
      delivered.push({ mailboxId: mailbox.id, messageId, threadId, folderId: folder.id });
    }
    const incomingLogs = acceptedRows(logged);
    // Written with the batch's other log rows, at its end (Touched.record).
    touched.incomingLogs.push(...incomingLogs);
    if (inTransaction) await inTransaction(tx, delivered);
    return { delivered, refused, incomingLogs, events };
  }
}
