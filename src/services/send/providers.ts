// Sending accounts ("providers"): custom SMTP relays of a team, with routing weights. Passwords are
// stored encrypted (AES-256-GCM under a server key kept in the settings table, so every process
// sharing the database can read them; a database dump alone without that row does not reveal
// them) and are never returned. The test action does a real SMTP handshake and AUTH.
import { createCipheriv, createDecipheriv, randomBytes, randomInt } from 'node:crypto';
import { iso } from '../../core/clock.ts';
import { decodeCursor, pageOf, type Page } from '../../core/cursor.ts';
import { AppError, notFound } from '../../core/errors.ts';
import { newId } from '../../core/ids.ts';
import type { ProviderRow } from '../../store/index.ts';
import type { ServiceContext } from '../context.ts';
import { smtpProbe, type SmtpTarget } from './smtp-client.ts';

const KEY_SETTING = 'provider_password_key';

type QuotaValue = number | { min: number; max: number } | null;
interface Quotas {
  per_second: QuotaValue;
  per_minute: QuotaValue;
  per_hour: QuotaValue;
  per_day: QuotaValue;
}
const QUOTA_KEYS = ['per_second', 'per_minute', 'per_hour', 'per_day'] as const;

export interface ProviderInput {
  name?: string;
  smtp_host?: string;
  smtp_port?: number;
  smtp_protocol?: 'tls' | 'ssl' | 'none' | 'starttls';
  smtp_username?: string;
  smtp_password?: string;
  from_email?: string | null;
  from_name?: string | null;
  reply_to_email?: string | null;
  reply_to_name?: string | null;
  tracking_domain?: string | null;
  percentage?: number;
  quotas?: Partial<Record<(typeof QUOTA_KEYS)[number], QuotaValue>>;
}

export function providerView(row: ProviderRow): Record<string, unknown> {
  const quotas = JSON.parse(row.quotas) as Quotas;
  const range = (q: QuotaValue): { min: number; max: number } | null => (q === null || q === undefined ? null : typeof q === 'number' ? { min: q, max: q } : q);
  return {
    id: row.id,
    name: row.name,
    type: row.type,
    status: row.status,
    status_reason: row.status_reason,
    is_active: row.status === 'active',
    is_editable: true,
    is_shared: false,
    allowed_actions: { activate: row.status !== 'active', deactivate: row.status === 'active', delete: true, test: true, update: true },
    smtp_host: row.smtp_host,
    smtp_port: row.smtp_port,
    smtp_protocol: row.smtp_protocol,
    smtp_username: row.smtp_username,
    has_smtp_password: row.smtp_password.length > 0,
    has_refresh_token: false,
    oauth_email: null,
    from_email: row.from_email,
    from_name: row.from_name,
    reply_to_email: row.reply_to_email,
    reply_to_name: row.reply_to_name,
    tracking_domain: row.tracking_domain,
    percentage: row.percentage,
    quotas: { per_second: range(quotas.per_second), per_minute: range(quotas.per_minute), per_hour: range(quotas.per_hour), per_day: range(quotas.per_day) },
    last_tested_at: row.last_tested_at,
    last_used_at: row.last_used_at,
    created_at: row.created_at,
    updated_at: row.updated_at,
  };
}

function validation(field: string, message: string): AppError {
  return new AppError('validation_error', message, { param: field, errors: [{ field, code: 'custom', message }] });
}

function checkQuotas(q: ProviderInput['quotas'], base: Quotas): Quotas {
  const out = { ...base };
  if (!q) return out;
  for (const k of QUOTA_KEYS) {
    if (!(k in q)) continue;
    const v = q[k];
    if (v !== null && typeof v === 'object' && v.min > v.max) throw validation(`quotas.${k}`, 'quota min must not exceed max');
    out[k] = v ?? null;
  }
  return out;
}

/** Quota windows in ms. */
const WINDOWS = { per_second: 1000, per_minute: 60_000, per_hour: 3_600_000, per_day: 86_400_000 } as const;

export class ProvidersService {
  private readonly ctx: ServiceContext;
  private key: Buffer | null = null;
  /** Messages sent per provider and quota window in this process: window key -> count. */
  private readonly sent = new Map<string, { window: number; count: number }>();

  constructor(ctx: ServiceContext) {
    this.ctx = ctx;
  }

  private async cipherKey(): Promise<Buffer> {
    this.key ??= Buffer.from(await this.ctx.store.settings.getOrCreate(KEY_SETTING, () => randomBytes(32).toString('base64')), 'base64');
    return this.key;
  }

  private async encrypt(plain: string): Promise<string> {
    const iv = randomBytes(12);
    const c = createCipheriv('aes-256-gcm', await this.cipherKey(), iv);
    const body = Buffer.concat([c.update(plain, 'utf8'), c.final()]);
    return [iv, c.getAuthTag(), body].map((b) => b.toString('base64url')).join('.');
  }

  async password(row: ProviderRow): Promise<string> {
    const [iv, tag, body] = row.smtp_password.split('.').map((p) => Buffer.from(p, 'base64url'));
    const d = createDecipheriv('aes-256-gcm', await this.cipherKey(), iv!);
    d.setAuthTag(tag!);
    return Buffer.concat([d.update(body!), d.final()]).toString('utf8');
  }

  private async own(teamId: string, id: string): Promise<ProviderRow> {
    const row = await this.ctx.store.providers.get(id);
    if (!row || row.team_id !== teamId) throw notFound('Sending account');
    return row;
  }

  async list(teamId: string, limit: number, cursor: string | undefined, filter: { status?: string; type?: string }): Promise<Page<Record<string, unknown>>> {
    const rows = await this.ctx.store.providers.listForTeam(teamId, { limit, after: decodeCursor(cursor), ...filter });
    const page = pageOf(rows, limit, (r) => ({ v: r.created_at, id: r.id }));
    return { ...page, items: page.items.map(providerView) };
  }

  async stats(teamId: string): Promise<Record<string, unknown>> {
    const rows = await this.ctx.store.providers.allForTeam(teamId);
    const by = (st: string): number => rows.filter((r) => r.status === st).length;
    const status = { active: by('active'), inactive: by('inactive'), error: by('error'), pending: by('pending') };
    return { total: rows.length, ...status, by_status: status, by_type: { smtp: rows.filter((r) => r.type === 'smtp').length, gmail_api: 0, outlook_api: 0, amazon_ses: 0 } };
  }

  /** Delivery-log counts per account over 7 days (sent_today from 00:00 UTC). */
  async usage(teamId: string): Promise<Record<string, unknown>> {
    const now = this.ctx.clock.now();
    const today = iso(Math.floor(now / 86_400_000) * 86_400_000);
    const rows = await this.ctx.store.providers.allForTeam(teamId);
    const counts = await this.ctx.store.deliveryLogs.providerCounts(teamId, iso(now - 7 * 86_400_000), today);
    return {
      window_days: 7,
      providers: rows.map((p) => {
        const mine = counts.filter((c) => c.provider_id === p.id);
        const n = (st: string): number => mine.filter((c) => c.status === st).reduce((a, c) => a + c.n, 0);
        return { provider_id: p.id, sent_today: mine.filter((c) => c.status === 'sent').reduce((a, c) => a + c.today, 0), total_7d: mine.reduce((a, c) => a + c.n, 0), sent_7d: n('sent'), failed_7d: n('failed'), rejected_7d: n('rejected'), pending_7d: n('pending') };
      }),
    };
  }

  async get(teamId: string, id: string): Promise<Record<string, unknown>> {
    return providerView(await this.own(teamId, id));
  }

  async create(teamId: string, input: ProviderInput): Promise<Record<string, unknown>> {
    if ((await this.ctx.store.providers.countForTeam(teamId)) >= this.ctx.config.outbound.maxPerTeamProviders) {
      throw new AppError('limit_exceeded', `A team may hold at most ${this.ctx.config.outbound.maxPerTeamProviders} sending accounts`);
    }
    const now = iso(this.ctx.clock.now());
    const row: ProviderRow = {
      id: newId('dprov'),
      team_id: teamId,
      name: input.name!,
      type: 'smtp',
      status: 'active',
      status_reason: null,
      smtp_host: input.smtp_host!.toLowerCase(),
      smtp_port: input.smtp_port!,
      smtp_protocol: input.smtp_protocol!,
      smtp_username: input.smtp_username!,
      smtp_password: await this.encrypt(input.smtp_password!),
      from_email: input.from_email ?? null,
      from_name: input.from_name ?? null,
      reply_to_email: input.reply_to_email ?? null,
      reply_to_name: input.reply_to_name ?? null,
      tracking_domain: input.tracking_domain ?? null,
      percentage: input.percentage ?? 100,
      quotas: JSON.stringify(checkQuotas(input.quotas, { per_second: null, per_minute: null, per_hour: null, per_day: null })),
      last_tested_at: null,
      last_used_at: null,
      created_at: now,
      updated_at: now,
    };
    await this.ctx.store.providers.insert(row);
    return providerView(row);
  }

  async update(teamId: string, id: string, input: ProviderInput): Promise<Record<string, unknown>> {
    const row = await this.own(teamId, id);
    const patch: Partial<ProviderRow> = { updated_at: iso(this.ctx.clock.now()) };
    if (input.name !== undefined) patch.name = input.name;
    if (input.smtp_host !== undefined) patch.smtp_host = input.smtp_host.toLowerCase();
    if (input.smtp_port !== undefined) patch.smtp_port = input.smtp_port;
    if (input.smtp_protocol !== undefined) patch.smtp_protocol = input.smtp_protocol;
    if (input.smtp_username !== undefined) patch.smtp_username = input.smtp_username;
    if (input.smtp_password !== undefined) patch.smtp_password = await this.encrypt(input.smtp_password);
    for (const k of ['from_email', 'from_name', 'reply_to_email', 'reply_to_name', 'tracking_domain'] as const) if (input[k] !== undefined) patch[k] = input[k];
    if (input.percentage !== undefined) patch.percentage = input.percentage;
    if (input.quotas !== undefined) patch.quotas = JSON.stringify(checkQuotas(input.quotas, JSON.parse(row.quotas) as Quotas));
    await this.ctx.store.providers.update(id, patch);
    return providerView({ ...row, ...patch });
  }

  async delete(teamId: string, id: string): Promise<string> {
    await this.own(teamId, id);
    await this.ctx.store.providers.delete(id);
    return id;
  }

  async setActive(teamId: string, id: string, active: boolean): Promise<Record<string, unknown>> {
    const row = await this.own(teamId, id);
    const patch: Partial<ProviderRow> = { status: active ? 'active' : 'inactive', status_reason: null, updated_at: iso(this.ctx.clock.now()) };
    await this.ctx.store.providers.update(id, patch);
    return providerView({ ...row, ...patch });
  }

  async target(row: ProviderRow): Promise<SmtpTarget> {
    const security = row.smtp_protocol === 'ssl' || row.smtp_protocol === 'tls' ? 'implicit' : row.smtp_protocol === 'starttls' ? 'starttls' : 'none';
    return {
      host: row.smtp_host,
      port: row.smtp_port,
      security,
      verifyCertificate: true,
      auth: { user: row.smtp_username, pass: await this.password(row) },
      heloName: this.ctx.config.hostname,
      timeoutMs: this.ctx.config.outbound.timeoutSeconds * 1000,
    };
  }

  /** A real connection, EHLO, TLS as configured and AUTH; the outcome is recorded on the account. */
  async test(teamId: string, id: string): Promise<{ success: boolean; message: string; latency_ms: number; tested_at: string }> {
    const row = await this.own(teamId, id);
    const started = performance.now();
    const result = await smtpProbe(await this.target(row));
    const latency = Math.round(performance.now() - started);
    const testedAt = iso(this.ctx.clock.now());
    await this.ctx.store.providers.update(id, { last_tested_at: testedAt, updated_at: testedAt });
    return {
      success: result.ok,
      message: result.ok ? 'Connected and authenticated' : `Connection test failed: ${result.reply}`,
      latency_ms: latency,
      tested_at: testedAt,
    };
  }

  /**
   * The providers a mailbox sends through, in failover order: a weighted random permutation by
   * `percentage` (weight 0 only as a last resort). 'none' means direct MX delivery; a scope that
   * names no usable provider is an empty list.
   */
  async routeFor(teamId: string, scope: { type: string; provider_public_ids?: string[] }): Promise<ProviderRow[] | 'direct'> {
    const active = await this.ctx.store.providers.activeForTeam(teamId);
    let pool: ProviderRow[];
    if (scope.type === 'all') {
      if (active.length === 0) return 'direct';
      pool = active;
    } else if (scope.type === 'providers') {
      const wanted = new Set(scope.provider_public_ids ?? []);
      pool = active.filter((p) => wanted.has(p.id));
    } else pool = []; // delivery groups do not exist in Mailmux: a group scope has no provider
    const order: ProviderRow[] = [];
    const rest = [...pool];
    while (rest.length > 0) {
      const weights = rest.map((p) => Math.max(0, p.percentage ?? 100));
      const total = weights.reduce((a, b) => a + b, 0);
      let pick = 0;
      if (total > 0) {
        let r = randomInt(total);
        while (r >= weights[pick]!) r -= weights[pick++]!;
      }
      order.push(rest.splice(pick, 1)[0]!);
    }
    return order;
  }

  /**
   * Whether the provider's quotas leave room for one more message now (a range counts with its
   * max). Counted per process, from its start: with several processes each enforces the quota on
   * its own share.
   */
  withinQuota(row: ProviderRow): boolean {
    const quotas = JSON.parse(row.quotas) as Quotas;
    const now = this.ctx.clock.now();
    for (const k of QUOTA_KEYS) {
      const q = quotas[k];
      if (q === null || q === undefined) continue;
      const cap = typeof q === 'number' ? q : q.max;
      const u = this.sent.get(`${row.id}:${k}`);
      if (u && u.window === Math.floor(now / WINDOWS[k]) && u.count >= cap) return false;
    }
    return true;
  }

  /** Counts one message against the provider's quota windows. */
  countUse(row: ProviderRow): void {
    const now = this.ctx.clock.now();
    for (const k of QUOTA_KEYS) {
      const window = Math.floor(now / WINDOWS[k]);
      const key = `${row.id}:${k}`;
      const u = this.sent.get(key);
      if (u && u.window === window) u.count++;
      else this.sent.set(key, { window, count: 1 });
    }
  }

  async markUsed(id: string): Promise<void> {
    const now = iso(this.ctx.clock.now());
    await this.ctx.store.providers.update(id, { last_used_at: now });
  }

  async markError(id: string, reason: string): Promise<void> {
    await this.ctx.store.providers.update(id, { status: 'error', status_reason: reason.slice(0, 300), updated_at: iso(this.ctx.clock.now()) });
  }
}
