// Sender filters for mailboxes and domains: off / allowlist / denylist with up to 1000 rules.
// Rules match the envelope sender by exact address or by domain. A mailbox whose own filter is on
// (mode other than off) replaces its domain's rules; otherwise the domain's apply.
import { iso } from '../core/clock.ts';
import { AppError, conflict, notFound, type FieldIssue } from '../core/errors.ts';
import { FILTER_RULES_MAX } from '../config/limits.ts';
import { isValidDomain, isValidEmail, splitAddress } from '../mime/addresses.ts';
import type { FilterSetRow } from '../store/index.ts';
import type { ServiceContext } from './context.ts';

export type FilterMode = 'off' | 'allowlist' | 'denylist';
export interface FilterRule {
  type: 'allow' | 'deny';
  pattern: string;
  note?: string | null;
}
export interface FilterState {
  mode: FilterMode;
  rules: FilterRule[];
}

const OFF: FilterState = { mode: 'off', rules: [] };

/**
 * Validates and normalises a rule set: patterns lowercased, `*@domain` stored as `domain`,
 * duplicates merged, sorted by pattern. Rule types must agree with the mode (allow with allowlist,
 * deny with denylist); a contradictory set is rejected, not trimmed. An allowlist or denylist with
 * no rules is stored as `off` (the spec's "removing every rule turns filtering off").
 */
export function normaliseFilterState(input: FilterState): FilterState {
  const issues: FieldIssue[] = [];
  if (input.rules.length > FILTER_RULES_MAX) {
    throw new AppError('validation_error', `At most ${FILTER_RULES_MAX} rules are allowed`, {
      param: 'rules',
      errors: [{ field: 'rules', code: 'too_big', message: `At most ${FILTER_RULES_MAX} rules` }],
    });
  }
  const byPattern = new Map<string, FilterRule>();
  input.rules.forEach((rule, i) => {
    let pattern = rule.pattern.trim().toLowerCase();
    if (pattern.startsWith('*@')) pattern = pattern.slice(2);
    const ok = pattern.includes('@') ? isValidEmail(pattern) : isValidDomain(pattern);
    if (!ok) issues.push({ field: `rules.${i}.pattern`, code: 'invalid_string', message: 'Expected an email address, a domain, or *@domain' });
    const wanted = input.mode === 'allowlist' ? 'allow' : input.mode === 'denylist' ? 'deny' : null;
    if (wanted !== null && rule.type !== wanted) {
      issues.push({ field: `rules.${i}.type`, code: 'invalid_enum_value', message: `Mode ${input.mode} takes only ${wanted} rules` });
    }
    if (!byPattern.has(pattern)) byPattern.set(pattern, { type: rule.type, pattern, note: rule.note ?? null });
  });
  if (input.mode === 'off' && new Set(input.rules.map((r) => r.type)).size > 1) {
    issues.push({ field: 'rules', code: 'custom', message: 'A rule set holds either allow or deny rules, not both' });
  }
  if (issues.length > 0) throw new AppError('validation_error', 'Invalid filter rules', { param: issues[0]?.field, errors: issues });
  const rules = [...byPattern.values()].sort((a, b) => (a.pattern < b.pattern ? -1 : a.pattern > b.pattern ? 1 : 0));
  return { mode: rules.length === 0 ? 'off' : input.mode, rules };
}

/** true = the sender may deliver. */
export function senderAllowed(state: FilterState, envelopeSender: string): boolean {
  if (state.mode === 'off') return true;
  const sender = envelopeSender.trim().toLowerCase();
  const domain = splitAddress(sender)?.domain ?? '';
  const matches = state.rules.some((r) => r.pattern === sender || r.pattern === domain);
  return state.mode === 'allowlist' ? matches : !matches;
}

function stateOf(row: FilterSetRow | undefined): FilterState {
  if (!row) return OFF;
  return { mode: row.mode, rules: JSON.parse(row.rules) as FilterRule[] };
}

export class FiltersService {
  private readonly ctx: ServiceContext;
  constructor(ctx: ServiceContext) {
    this.ctx = ctx;
  }

  async mailboxFilter(mailboxId: string): Promise<FilterState> {
    return stateOf(await this.ctx.store.filters.get('mailbox', mailboxId));
  }

  async domainFilter(domainId: string): Promise<FilterState> {
    return stateOf(await this.ctx.store.filters.get('domain', domainId));
  }

  async setMailboxFilter(teamId: string, mailboxId: string, input: FilterState): Promise<FilterState> {
    const state = normaliseFilterState(input);
    await this.ctx.store.filters.put(
      { owner_kind: 'mailbox', owner_id: mailboxId, mode: state.mode, rules: JSON.stringify(state.rules), updated_at: iso(this.ctx.clock.now()) },
      teamId,
    );
    return state;
  }

  /** Domain filters exist only on send_receive domains and cannot change while the domain is deleted. */
  async setDomainFilter(teamId: string, domainId: string, input: FilterState): Promise<FilterState> {
    const domain = await this.ctx.store.domains.get(domainId);
    if (!domain || domain.team_id !== teamId) throw notFound('Domain');
    if (domain.mode !== 'send_receive') throw conflict('Domain filters need a send_receive domain');
    if (domain.deleting === 1) throw conflict('Domain is being deleted');
    const state = normaliseFilterState(input);
    await this.ctx.store.filters.put(
      { owner_kind: 'domain', owner_id: domainId, mode: state.mode, rules: JSON.stringify(state.rules), updated_at: iso(this.ctx.clock.now()) },
      teamId,
    );
    return state;
  }

  /** The rules that apply to mail for this mailbox: its own when on, else its domain's. */
  async effectiveFilter(mailboxId: string, domainId: string): Promise<FilterState> {
    const own = await this.mailboxFilter(mailboxId);
    return own.mode !== 'off' ? own : this.domainFilter(domainId);
  }
}
