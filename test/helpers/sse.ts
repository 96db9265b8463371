// A small Server-Sent Events client over a real socket: parses frames (id, event, data, comments)
// as they arrive and lets a test wait for the next one.
import { request, type IncomingMessage } from 'node:http';

export interface SseFrame {
  id: string | null;
  event: string | null;
  data: string | null;
  /** Comment lines (": ping"). */
  comment: string | null;
  at: number;
}

export interface SseStream {
  status: number;
  headers: IncomingMessage['headers'];
  /** The JSON body when the server refused the stream (status ≠ 200). */
  errorBody: any;
  frames: SseFrame[];
  /** The next frame that passes `filter` (comments are skipped unless asked for), or an error after timeoutMs. */
  next(opts?: { timeoutMs?: number; comments?: boolean }): Promise<SseFrame>;
  /** Resolves when the server ends the stream. */
  ended: Promise<void>;
  close(): void;
}

export function openSse(url: string, token: string, headers: Record<string, string> = {}): Promise<SseStream> {
  return new Promise((resolve, reject) => {
    const req = request(url, { headers: { authorization: `Bearer ${token}`, accept: 'text/event-stream', ...headers } }, (res) => {
      if (res.statusCode !== 200) {
        let text = '';
        res.setEncoding('utf8').on('data', (s: string) => (text += s));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, errorBody: text ? JSON.parse(text) : null, frames: [], next: () => Promise.reject(new Error('no stream')), ended: Promise.resolve(), close: () => undefined }));
        return;
      }
      const frames: SseFrame[] = [];
      let read = 0;
      let waiter: (() => void) | null = null;
      let buf = '';
      let endedResolve: () => void = () => undefined;
      const ended = new Promise<void>((r) => (endedResolve = r));
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        buf += chunk;
        let i: number;
        while ((i = buf.indexOf('\n\n')) >= 0) {
          const block = buf.slice(0, i);
          buf = buf.slice(i + 2);
          const f: SseFrame = { id: null, event: null, data: null, comment: null, at: performance.now() };
          for (const line of block.split('\n')) {
            if (line.startsWith(':')) f.comment = line.slice(1).trim();
            else if (line.startsWith('id: ')) f.id = line.slice(4);
            else if (line.startsWith('event: ')) f.event = line.slice(7);
            else if (line.startsWith('data: ')) f.data = (f.data === null ? '' : `${f.data}\n`) + line.slice(6);
          }
          frames.push(f);
        }
        waiter?.();
      });
      res.on('end', () => {
        endedResolve();
        waiter?.();
      });
      res.on('error', () => endedResolve());
      resolve({
        status: 200,
        headers: res.headers,
        errorBody: null,
        frames,
        ended,
        async next(opts = {}) {
          const deadline = Date.now() + (opts.timeoutMs ?? 5000);
          for (;;) {
            while (read < frames.length) {
              const f = frames[read++]!;
              if (f.comment !== null && !opts.comments) continue;
              return f;
            }
            if (res.readableEnded) throw new Error('stream ended');
            const left = deadline - Date.now();
            if (left <= 0) throw new Error('timed out waiting for an SSE frame');
            await new Promise<void>((r) => {
              const t = setTimeout(r, left);
              waiter = () => {
                clearTimeout(t);
                waiter = null;
                r();
              };
            });
          }
        },
        close: () => req.destroy(),
      });
    });
    req.on('error', reject);
    req.end();
  });
}
