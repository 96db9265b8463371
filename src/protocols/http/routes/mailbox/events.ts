// GET /mailbox/events: the Server-Sent Events stream of received mail (MailboxRealtimeEvent).
// Wire format per event: `id: evt_…`, `event: <event_type>`, `data: <json>`. Heartbeats are SSE
// comment lines (`: ping`), which EventSource clients ignore (spec-deviations.ts, SSE_PING).
import { invalidParameter } from '../../../../core/errors.ts';
import { REALTIME_EVENT_TYPES, type RealtimeEventType } from '../../../../services/realtime.ts';
import { defineRoute, type RouteDeps } from '../../route.ts';
import type { MailboxPrincipal } from './common.ts';

/** Heartbeat interval when the client names none (the spec allows 10..300 s). */
export const DEFAULT_PING_SECONDS = 25;

function eventTypes(raw: unknown): Set<RealtimeEventType> {
  if (typeof raw !== 'string' || raw.trim() === '') return new Set(REALTIME_EVENT_TYPES);
  const out = new Set<RealtimeEventType>();
  for (const part of raw.split(',').map((s) => s.trim()).filter(Boolean)) {
    if (!(REALTIME_EVENT_TYPES as readonly string[]).includes(part)) {
      throw invalidParameter(`event_types: unknown event type "${part}" (allowed: ${REALTIME_EVENT_TYPES.join(', ')})`, 'event_types');
    }
    out.add(part as RealtimeEventType);
  }
  return out;
}

export function registerEventRoutes(deps: RouteDeps): void {
  const realtime = deps.services.realtime;

  defineRoute<MailboxPrincipal>(deps, {
    method: 'GET',
    path: '/mailbox/events',
    surface: 'mailbox',
    handler: async ({ principal, query, headers }) => {
      const types = eventTypes(query.event_types);
      const header = headers['last-event-id'];
      const fromQuery = typeof query.last_event_id === 'string' && query.last_event_id !== '' ? query.last_event_id : null;
      const lastEventId = typeof header === 'string' && header.trim() !== '' ? header.trim() : fromQuery;
      const pingMs = (typeof query.ping === 'number' ? query.ping : DEFAULT_PING_SECONDS) * 1000;
      const closeAfterMs = typeof query.close_after === 'number' ? query.close_after * 1000 : null;

      // Reserve the slot before the response starts, so an over-cap client gets a JSON 429.
      const stream = realtime.open({ keyId: principal.keyId, teamId: principal.teamId, mailboxId: principal.mailboxId, types, lastEventId });
      return {
        stream: {
          headers: { 'Content-Type': 'text/event-stream; charset=utf-8', 'Cache-Control': 'no-store', Connection: 'keep-alive', 'X-Accel-Buffering': 'no' },
          start: (res, req) => {
            req.socket.setNoDelay(true);
            req.socket.setTimeout(0);
            const timers: NodeJS.Timeout[] = [];
            const end = (): void => {
              for (const t of timers) clearInterval(t);
              stream.close();
            };
            timers.push(setInterval(() => stream.write(`: ping\n\n`), pingMs));
            if (closeAfterMs !== null) timers.push(setTimeout(end, closeAfterMs));
            res.on('close', end);
            res.on('error', end);
            // A first line flushes the headers through proxies and tells the client it is live.
            res.write(`: connected\n\n`);
            void stream.attach({
              write: (chunk) => {
                res.write(chunk);
                return res.writableLength;
              },
              close: () => {
                for (const t of timers) clearInterval(t);
                if (!res.writableEnded) res.end();
              },
            });
          },
        },
      };
    },
  });
}
