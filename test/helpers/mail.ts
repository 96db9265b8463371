// Building real RFC 5322 messages for tests (nodemailer's composer) and putting them into a
// mailbox through the one ingest path.
import MailComposer from 'nodemailer/lib/mail-composer';
import type { TestApp } from './app.ts';

export interface TestMessage {
  from?: string;
  to?: string | string[];
  cc?: string | string[];
  subject?: string;
  text?: string;
  html?: string;
  date?: Date;
  messageId?: string;
  inReplyTo?: string;
  references?: string[];
  headers?: Record<string, string>;
  attachments?: { filename: string; content: Buffer | string; contentType?: string; cid?: string }[];
}

export async function buildMessage(m: TestMessage): Promise<Buffer> {
  const composer = new MailComposer({
    from: m.from ?? 'Alice Sender <alice@example.org>',
    to: m.to ?? 'agent@agents.mailmux.test',
    ...(m.cc ? { cc: m.cc } : {}),
    subject: m.subject ?? 'Hello',
    ...(m.text !== undefined ? { text: m.text } : {}),
    ...(m.html !== undefined ? { html: m.html } : {}),
    date: m.date ?? new Date('2026-11-20T10:00:00Z'),
    ...(m.messageId ? { messageId: m.messageId } : {}),
    ...(m.inReplyTo ? { inReplyTo: m.inReplyTo } : {}),
    ...(m.references ? { references: m.references } : {}),
    ...(m.headers ? { headers: m.headers } : {}),
    ...(m.attachments ? { attachments: m.attachments } : {}),
  });
  return new Promise((resolve, reject) => composer.compile().build((err, out) => (err ? reject(err) : resolve(out))));
}

export interface TestMailbox {
  id: string;
  email: string;
  key: string;
}

export async function createMailbox(app: TestApp, local = 'agent'): Promise<TestMailbox> {
  const res = await app.api('POST', '/api/v1/mailboxes', { body: { email: `${local}@${app.config.defaultDomain}` } });
  if (res.status !== 201) throw new Error(`mailbox create failed: ${res.text}`);
  return { id: res.body.data.mailbox.id, email: res.body.data.mailbox.email, key: res.body.data.credential.secret };
}

/** Delivers a message to a mailbox through ingest; returns the new message id. */
export async function deliver(app: TestApp, mailbox: TestMailbox, m: TestMessage | Buffer, opts: { receivedAt?: number; spam?: boolean } = {}): Promise<string> {
  const raw = Buffer.isBuffer(m) ? m : await buildMessage({ to: mailbox.email, ...m });
  const r = await app.services.ingest.deliver({
    raw,
    targets: [{ mailboxId: mailbox.id }],
    ...(opts.receivedAt !== undefined ? { receivedAt: opts.receivedAt } : {}),
    ...(opts.spam ? { spam: { isSpam: true, score: 9 } } : {}),
  });
  const id = r.delivered[0]?.messageId;
  if (!id) throw new Error(`not delivered: ${JSON.stringify(r.refused)}`);
  return id;
}
