// An inspection worker thread (see inspect.ts): inspects each message it is sent and posts the
// outcome back. Nothing is kept between messages but the DNS answer cache of the resolver.
import { parentPort } from 'node:worker_threads';
import { inspectMessage, ownBytes, resolverFor, type WorkerReply, type WorkerRequest } from './inspect.ts';

parentPort!.on('message', (req: WorkerRequest) => {
  inspectMessage(req.task, resolverFor(req.dnsServers)).then(
    (r) => {
      const raw = ownBytes(r.raw);
      // The bytes move to the main thread instead of being copied.
      parentPort!.postMessage({ id: req.id, result: { ...r, raw } } satisfies WorkerReply, [raw.buffer as ArrayBuffer]);
    },
    (err: unknown) => parentPort!.postMessage({ id: req.id, error: err instanceof Error ? err.message : String(err) } satisfies WorkerReply),
  );
});
