// A real DNS server on loopback (UDP) for verification tests: serves TXT and MX records from a
// table the test controls, NXDOMAIN for unknown names, and SERVFAIL for names marked broken.
import dgram from 'node:dgram';
import type { AddressInfo } from 'node:net';
import dnsPacket from 'dns-packet';

export interface Zone {
  txt: Map<string, string[]>;
  mx: Map<string, { exchange: string; priority: number }[]>;
  /** IPv4 addresses (outbound delivery resolves MX hosts). */
  a: Map<string, string[]>;
  servfail: Set<string>;
}

export class LoopbackDns {
  readonly zone: Zone = { txt: new Map(), mx: new Map(), a: new Map(), servfail: new Set() };
  private readonly socket = dgram.createSocket('udp4');
  queries = 0;

  async start(): Promise<string> {
    this.socket.on('message', (msg, rinfo) => this.answer(msg, rinfo));
    await new Promise<void>((resolve) => this.socket.bind(0, '127.0.0.1', resolve));
    return `127.0.0.1:${(this.socket.address() as AddressInfo).port}`;
  }

  private answer(msg: Buffer, rinfo: dgram.RemoteInfo): void {
    let query: dnsPacket.Packet;
    try {
      query = dnsPacket.decode(msg);
    } catch {
      return;
    }
    this.queries += 1;
    const q = query.questions?.[0];
    if (!q) return;
    const name = q.name.toLowerCase().replace(/\.$/, '');
    const answers: dnsPacket.Answer[] = [];
    let rcode: 'NOERROR' | 'NXDOMAIN' | 'SERVFAIL' = 'NOERROR';
    const known = this.zone.txt.has(name) || this.zone.mx.has(name) || this.zone.a.has(name);
    if (this.zone.servfail.has(name)) rcode = 'SERVFAIL';
    else if (!known) rcode = 'NXDOMAIN';
    else if (q.type === 'TXT') {
      for (const value of this.zone.txt.get(name) ?? []) {
        // Long values are split into 255-byte character-strings, as real zones do.
        const chunks = value.match(/.{1,255}/g) ?? [''];
        answers.push({ type: 'TXT', name: q.name, ttl: 60, data: chunks });
      }
    } else if (q.type === 'MX') {
      for (const mx of this.zone.mx.get(name) ?? []) answers.push({ type: 'MX', name: q.name, ttl: 60, data: { preference: mx.priority, exchange: mx.exchange } });
    } else if (q.type === 'A') {
      for (const address of this.zone.a.get(name) ?? []) answers.push({ type: 'A', name: q.name, ttl: 60, data: address });
    }
    const response = dnsPacket.encode({
      type: 'response',
      id: query.id,
      flags: dnsPacket.RECURSION_DESIRED | dnsPacket.RECURSION_AVAILABLE | (rcode === 'NXDOMAIN' ? 3 : rcode === 'SERVFAIL' ? 2 : 0),
      questions: query.questions,
      answers,
    });
    this.socket.send(response, rinfo.port, rinfo.address);
  }

  async stop(): Promise<void> {
    await new Promise<void>((resolve) => this.socket.close(() => resolve()));
  }
}
