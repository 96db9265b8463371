// State tokens: opaque strings that encode the newest change-log id of one (mailbox, type).
// The same log answers /changes (issue: sync), so a token is a position in it.
import type { Store } from '../../store/index.ts';

export const STATE_TYPES = ['message', 'folder', 'thread', 'submission', 'identity', 'quota'] as const;
export type StateType = (typeof STATE_TYPES)[number];

export function encodeState(changeId: number): string {
  return `s${changeId.toString(36)}`;
}


export async function stateOf(store: Pick<Store, 'changes'>, mailboxId: string, type: StateType): Promise<string> {
  return encodeState(await store.changes.latest(mailboxId, type));
}

export async function allStates(store: Pick<Store, 'changes'>, mailboxId: string): Promise<Record<'messages' | 'folders' | 'threads' | 'submissions' | 'identities' | 'quotas', string>> {
  const [messages, folders, threads, submissions, identities, quotas] = await Promise.all(STATE_TYPES.map((t) => stateOf(store, mailboxId, t)));
  return { messages: messages!, folders: folders!, threads: threads!, submissions: submissions!, identities: identities!, quotas: quotas! };
}
