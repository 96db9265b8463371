// The bench's loopback DNS server in a process of its own, as a local resolver would be: its
// answers never wait for the bench's event loop (busy with SMTP senders and SSE streams).
// Prints "dns <address>" once listening; stops on SIGTERM or when its parent goes (stdin closes).
import { LoopbackDns } from '../test/helpers/dns-server.ts';

const dns = new LoopbackDns();
const addr = await dns.start();
process.stdout.write(`dns ${addr}\n`);
const stop = (): void => {
  void dns.stop().finally(() => process.exit(0));
};
process.on('SIGTERM', stop);
process.stdin.on('close', stop);
process.stdin.resume();
