// Domains: create (with a DKIM key Mailmux keeps), list, get, upgrade to send_receive, delete,
// verify against DNS, and the BIND zone file. The default domain from configuration is verified at
// start and belongs to no team.
//
// The spec's SES-named status fields map onto Mailmux's own checks (documented in README):
//   ses_dkim_status                    our DKIM TXT record: not_started | pending | success | failed | temporary_failure
//   ses_mail_from_status               bounce.<domain> MX + SPF: same values
//   ses_identity_verification_status   ownership TXT + SPF + DMARC (+ MX for send_receive): Pending | Success | Failed | TemporaryFailure
//   ses_dkim_signing_enabled           always true: Mailmux signs with the domain key once DKIM verifies
//   ses_verified_for_sending           the domain is verified (every check passed)
import { generateKeyPair } from 'node:crypto';
import { promisify } from 'node:util';
import { iso } from '../core/clock.ts';
import { AppError, conflict, notFound } from '../core/errors.ts';
import { newId, randomString } from '../core/ids.ts';
import { decodeCursor, pageOf, type Page } from '../core/cursor.ts';
import { DKIM_RSA_BITS } from '../config/limits.ts';
import { isValidDomain } from '../mime/addresses.ts';
import { isUniqueViolation, type DomainRow } from '../store/index.ts';
import type { ServiceContext } from './context.ts';
import { Dns, type Lookup } from './dns.ts';

const generateKeyPairAsync = promisify(generateKeyPair);

export type DomainMode = 'send_only' | 'send_receive';

export interface DnsRecords {
  verification: { name: string; value: string };
  spf: { name: string; value: string };
  dmarc: { name: string; value: string };
  dkim: { name: string; value: string }[];
  mx: { priority: number; target: string }[];
  mail_from: { mx: { name: string; priority: number; target: string }; spf: { name: string; value: string } };
}

export interface DomainView {
  id: string;
  domain: string;
  mode: DomainMode;
  verification_status: 'pending' | 'verified' | 'failed';
  verified_at: string | null;
  mailbox_count: number;
  dns_records: DnsRecords;
  ses_dkim_signing_enabled: boolean | null;
  ses_dkim_status: string | null;
  ses_identity_checked_at: string | null;
  ses_identity_verification_status: string | null;
  ses_mail_from_status: string | null;
  ses_verified_for_sending: boolean | null;
  created_at: string;
}

export interface VerifyChecks {
  verification_txt: boolean;
  spf: boolean;
  dmarc: boolean;
  mx: boolean;
  mail_from_mx: boolean;
  mail_from_spf: boolean;
}

export interface VerifyResult {
  status: 'verified' | 'pending' | 'failed';
  checks: VerifyChecks;
  ses_dkim_signing_enabled: boolean;
  ses_dkim_status: string;
  ses_identity_checked_at: string;
  ses_identity_verification_status: string;
  ses_mail_from_status: string;
  ses_verified_for_sending: boolean;
}

function dkimTxtValue(publicKeyPem: string): string {
  const b64 = publicKeyPem.replace(/-----[^-]+-----/g, '').replace(/\s+/g, '');
  return `v=DKIM1; k=rsa; p=${b64}`;
}

function sameHost(a: string, b: string): boolean {
  return a.toLowerCase().replace(/\.$/, '') === b.toLowerCase().replace(/\.$/, '');
}

/** An SPF record authorises our host when one of its mechanisms names it (other includes may stand beside it). */
export function spfAuthorises(record: string, host: string): boolean {
  const terms = record.trim().split(/\s+/);
  if (terms[0]?.toLowerCase() !== 'v=spf1') return false;
  return terms.slice(1).some((term) => {
    const t = term.replace(/^[+~?]/, '').toLowerCase();
    if (term.startsWith('-')) return false;
    const [mech, arg] = t.split(/:(.*)/s, 2);
    return (mech === 'a' || mech === 'mx' || mech === 'include') && arg !== undefined && sameHost(arg.split('/')[0] ?? '', host);
  });
}

export function dmarcEnforces(record: string): boolean {
  const tags = new Map(
    record.split(';').map((part) => {
      const [k, ...v] = part.split('=');
      return [k?.trim().toLowerCase() ?? '', v.join('=').trim().toLowerCase()] as const;
    }),
  );
  return tags.get('v') === 'dmarc1' && (tags.get('p') === 'quarantine' || tags.get('p') === 'reject');
}

export class DomainsService {
  private readonly ctx: ServiceContext;
  private readonly dns: Dns;
  constructor(ctx: ServiceContext, dns?: Dns) {
    this.ctx = ctx;
    this.dns = dns ?? new Dns(ctx.config.dnsServers);
  }

  private now(): string {
    return iso(this.ctx.clock.now());
  }

  records(row: DomainRow): DnsRecords {
    const host = this.ctx.config.hostname;
    const prefix = this.ctx.config.verificationPrefix;
    const spf = `v=spf1 a:${host} ~all`;
    return {
      verification: { name: `_${prefix}.${row.domain}`, value: `${prefix}-verify=${row.verify_token}` },
      spf: { name: row.domain, value: spf },
      dmarc: { name: `_dmarc.${row.domain}`, value: 'v=DMARC1; p=quarantine; adkim=r; aspf=r' },
      dkim: [{ name: `${row.dkim_selector}._domainkey.${row.domain}`, value: dkimTxtValue(row.dkim_public_key) }],
      mx: row.mode === 'send_receive' ? [{ priority: 10, target: host }] : [],
      mail_from: {
        mx: { name: `bounce.${row.domain}`, priority: 10, target: host },
        spf: { name: `bounce.${row.domain}`, value: spf },
      },
    };
  }

  async view(row: DomainRow): Promise<DomainView> {
    return {
      id: row.id,
      domain: row.domain,
      mode: row.mode,
      verification_status: row.verification_status,
      verified_at: row.verified_at,
      mailbox_count: await this.ctx.store.mailboxes.countActiveForDomain(row.id),
      dns_records: this.records(row),
      ses_dkim_signing_enabled: true,
      ses_dkim_status: row.dkim_status,
      ses_identity_checked_at: row.checked_at,
      ses_identity_verification_status: row.identity_status,
      ses_mail_from_status: row.mail_from_status,
      ses_verified_for_sending: row.verification_status === 'verified',
      created_at: row.created_at,
    };
  }

  private async newRow(teamId: string | null, domain: string, mode: DomainMode, isDefault: boolean): Promise<DomainRow> {
    const { publicKey, privateKey } = await generateKeyPairAsync('rsa', {
      modulusLength: DKIM_RSA_BITS,
      publicKeyEncoding: { type: 'spki', format: 'pem' },
      privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
    });
    const now = this.now();
    return {
      id: newId('mdom'),
      team_id: teamId,
      domain,
      mode,
      is_default: isDefault ? 1 : 0,
      verification_status: isDefault ? 'verified' : 'pending',
      verified_at: isDefault ? now : null,
      verify_token: randomString(32),
      dkim_selector: `mm${now.slice(0, 10).replaceAll('-', '')}`,
      dkim_private_key: privateKey,
      dkim_public_key: publicKey,
      dkim_status: isDefault ? 'success' : 'not_started',
      mail_from_status: isDefault ? 'success' : 'not_started',
      identity_status: isDefault ? 'Success' : 'Pending',
      checked_at: isDefault ? now : null,
      fail_streak: 0,
      deleting: 0,
      created_at: now,
      updated_at: now,
    };
  }

  /** The configured default domain exists, is send_receive and verified (no DNS needed). */
  async ensureDefaultDomain(): Promise<DomainRow> {
    const name = this.ctx.config.defaultDomain;
    const existing = await this.ctx.store.domains.byName(name);
    if (existing) {
      if (existing.team_id !== null) throw new Error(`MAILMUX_DEFAULT_DOMAIN ${name} is already a team's custom domain`);
      if (existing.is_default === 1 && existing.verification_status === 'verified') return existing;
      await this.ctx.store.domains.update(existing.id, { is_default: 1, mode: 'send_receive', verification_status: 'verified', verified_at: this.now(), updated_at: this.now() });
      return (await this.ctx.store.domains.get(existing.id)) ?? existing;
    }
    const row = await this.newRow(null, name, 'send_receive', true);
    try {
      await this.ctx.store.domains.insert(row);
    } catch (err) {
      if (!isUniqueViolation(err)) throw err; // another process made it first
    }
    return (await this.ctx.store.domains.byName(name)) ?? row;
  }

  async create(teamId: string, input: { domain: string; mode?: DomainMode }): Promise<DomainView> {
    const domain = input.domain;
    if (!isValidDomain(domain) || domain !== domain.toLowerCase()) {
      throw new AppError('invalid_parameter', 'domain must be a lowercase fully qualified domain name without scheme or path', {
        param: 'domain',
        errors: [{ field: 'domain', code: 'invalid_string', message: 'Expected a lowercase fully qualified domain name' }],
      });
    }
    if (domain === this.ctx.config.defaultDomain) throw conflict('This domain is the server default domain');
    const limit = this.ctx.config.teamLimits.domains;
    const row = await this.newRow(teamId, domain, input.mode ?? 'send_receive', false);
    try {
      await this.ctx.store.transaction(async (tx) => {
        if ((await tx.domains.byName(domain)) !== undefined) throw conflict('Domain is already registered');
        if ((await tx.domains.countForTeam(teamId)) >= limit) throw new AppError('limit_exceeded', `A team may hold at most ${limit} domains`);
        await tx.domains.insert(row);
      });
    } catch (err) {
      if (isUniqueViolation(err)) throw conflict('Domain is already registered');
      throw err;
    }
    return this.view(row);
  }

  async list(teamId: string, limit: number, cursor?: string): Promise<Page<DomainView>> {
    const rows = await this.ctx.store.domains.listForTeam(teamId, { limit, after: decodeCursor(cursor) });
    const page = pageOf(rows, limit, (r) => ({ v: r.created_at, id: r.id }));
    return { ...page, items: await Promise.all(page.items.map((r) => this.view(r))) };
  }

  async getRow(teamId: string, id: string): Promise<DomainRow> {
    const row = await this.ctx.store.domains.get(id);
    if (!row || row.team_id !== teamId) throw notFound('Domain');
    return row;
  }

  async get(teamId: string, id: string): Promise<DomainView> {
    return this.view(await this.getRow(teamId, id));
  }

  /** The only update: send_only -> send_receive, which needs MX verification again. */
  async upgrade(teamId: string, id: string): Promise<DomainView> {
    const row = await this.getRow(teamId, id);
    if (row.deleting === 1) throw conflict('Domain is being deleted');
    if (row.mode === 'send_receive') return this.view(row);
    await this.ctx.store.domains.update(id, { mode: 'send_receive', verification_status: 'pending', updated_at: this.now() });
    return this.get(teamId, id);
  }

  async delete(teamId: string, id: string): Promise<void> {
    await this.ctx.store.transaction(async (tx) => {
      const row = await tx.domains.get(id);
      if (!row || row.team_id !== teamId) throw notFound('Domain');
      const live = await tx.mailboxes.countLiveForDomain(id);
      if (live > 0) throw conflict(`Domain still has ${live} mailbox(es); delete them first`);
      await tx.domains.delete(id);
    });
  }

  zoneFile(view: DomainView): string {
    const r = view.dns_records;
    const q = (v: string): string => (v.match(/.{1,255}/g) ?? ['']).map((chunk) => `"${chunk}"`).join(' ');
    const lines = [
      `; Mailmux DNS records for ${view.domain} (${view.mode})`,
      `; Publish these records at your DNS provider, then call POST /domains/${view.id}/verify.`,
      `${r.verification.name}.\t3600\tIN\tTXT\t${q(r.verification.value)}`,
      `${r.spf.name}.\t3600\tIN\tTXT\t${q(r.spf.value)}`,
      `${r.dmarc.name}.\t3600\tIN\tTXT\t${q(r.dmarc.value)}`,
      ...r.dkim.map((d) => `${d.name}.\t3600\tIN\tTXT\t${q(d.value)}`),
      ...r.mx.map((m) => `${view.domain}.\t3600\tIN\tMX\t${m.priority} ${m.target}.`),
      `${r.mail_from.mx.name}.\t3600\tIN\tMX\t${r.mail_from.mx.priority} ${r.mail_from.mx.target}.`,
      `${r.mail_from.spf.name}.\t3600\tIN\tTXT\t${q(r.mail_from.spf.value)}`,
    ];
    return `${lines.join('\n')}\n`;
  }

  /**
   * Looks every record up. All checks pass -> verified. A temporary DNS failure leaves the status as
   * it was. Otherwise a verified domain becomes failed (on a scheduled check only after two failures
   * in a row) and a pending or failed one stays as it is.
   */
  async verify(teamId: string, id: string, opts: { scheduled?: boolean } = {}): Promise<VerifyResult> {
    const row = await this.getRow(teamId, id);
    return this.verifyRow(row, opts);
  }

  async verifyRow(row: DomainRow, opts: { scheduled?: boolean } = {}): Promise<VerifyResult> {
    const records = this.records(row);
    const host = this.ctx.config.hostname;
    const [verTxt, spfTxt, dmarcTxt, dkimTxt, mx, bounceMx, bounceTxt] = await Promise.all([
      this.dns.txt(records.verification.name),
      this.dns.txt(row.domain),
      this.dns.txt(records.dmarc.name),
      this.dns.txt(records.dkim[0]?.name ?? ''),
      row.mode === 'send_receive' ? this.dns.mx(row.domain) : Promise.resolve<Lookup<{ exchange: string; priority: number }>>({ ok: true, records: [] }),
      this.dns.mx(records.mail_from.mx.name),
      this.dns.txt(records.mail_from.spf.name),
    ]);
    const has = <T>(l: Lookup<T>, pred: (v: T) => boolean): boolean => l.ok && l.records.some(pred);
    const expectedDkim = (records.dkim[0]?.value ?? '').replace(/\s+/g, '');
    const checks: VerifyChecks = {
      verification_txt: has(verTxt, (v) => v.trim() === records.verification.value),
      spf: has(spfTxt, (v) => spfAuthorises(v, host)),
      dmarc: has(dmarcTxt, dmarcEnforces),
      mx: row.mode === 'send_only' ? true : has(mx, (m) => sameHost(m.exchange, host)),
      mail_from_mx: has(bounceMx, (m) => sameHost(m.exchange, host)),
      mail_from_spf: has(bounceTxt, (v) => spfAuthorises(v, host)),
    };
    const dkimOk = has(dkimTxt, (v) => v.replace(/\s+/g, '') === expectedDkim);
    const status3 = (ok: boolean, lookups: Lookup<unknown>[]): 'success' | 'failed' | 'temporary_failure' =>
      ok ? 'success' : lookups.some((l) => !l.ok) ? 'temporary_failure' : 'failed';
    const dkimStatus = status3(dkimOk, [dkimTxt]);
    const mailFromStatus = status3(checks.mail_from_mx && checks.mail_from_spf, [bounceMx, bounceTxt]);
    const identityOk = checks.verification_txt && checks.spf && checks.dmarc && checks.mx;
    const identityLookups: Lookup<unknown>[] = [verTxt, spfTxt, dmarcTxt, mx];
    const identityStatus = identityOk ? 'Success' : identityLookups.some((l) => !l.ok) ? 'TemporaryFailure' : 'Failed';
    const allOk = identityOk && dkimOk && mailFromStatus === 'success';
    const temporary = !allOk && [verTxt, spfTxt, dmarcTxt, dkimTxt, mx, bounceMx, bounceTxt].some((l) => !l.ok);

    const now = this.now();
    let status = row.verification_status;
    let failStreak = row.fail_streak;
    let verifiedAt = row.verified_at;
    if (allOk) {
      status = 'verified';
      verifiedAt = now;
      failStreak = 0;
    } else if (!temporary && row.verification_status === 'verified') {
      failStreak += 1;
      if (!opts.scheduled || failStreak >= 2) status = 'failed';
    }
    const patch = {
      verification_status: status,
      verified_at: verifiedAt,
      fail_streak: failStreak,
      dkim_status: dkimStatus,
      mail_from_status: mailFromStatus,
      identity_status: identityStatus,
      checked_at: now,
      updated_at: now,
    };
    // A domain deleted or changed while we looked it up: the spec's 409.
    const updated = await this.ctx.store.transaction(async (tx) => {
      const current = await tx.domains.get(row.id);
      if (!current || current.mode !== row.mode || current.deleting === 1) return false;
      await tx.domains.update(row.id, patch);
      return true;
    });
    if (!updated) throw conflict('Domain changed during verification; try again');
    this.ctx.log.info({ event: 'domain.verified', domain_id: row.id, status, checks, dkim: dkimStatus }, 'domain verification');
    return {
      status,
      checks,
      ses_dkim_signing_enabled: true,
      ses_dkim_status: dkimStatus,
      ses_identity_checked_at: now,
      ses_identity_verification_status: identityStatus,
      ses_mail_from_status: mailFromStatus,
      ses_verified_for_sending: status === 'verified',
    };
  }

  /** Scheduled re-verification of every custom domain (the maintenance worker). */
  async reverifyAll(): Promise<number> {
    let n = 0;
    for (const row of await this.ctx.store.domains.listAllCustom()) {
      try {
        await this.verifyRow(row, { scheduled: true });
        n += 1;
      } catch (err) {
        this.ctx.log.warn({ event: 'domain.reverify_failed', domain_id: row.id, err: (err as Error).message });
      }
    }
    return n;
  }
}
