// The reference, run on this machine: Postfix accepting SMTP and handing each message to
// Dovecot over LMTP, which stores it in a Maildir. Debian's packages with their defaults, in a
// folder of their own (own configuration, queue, mail store and ports on 127.0.0.1), so a bench can
// run it next to Mailmux in the same run and report a ratio instead of comparing with a figure
// measured on another day.
//
// Needs root (Postfix's master and Dovecot start as root and drop to their users) and the packages:
//   apt-get install postfix dovecot-core dovecot-lmtpd
// The system's own Postfix and Dovecot, if any, are left alone.
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync, chmodSync, chownSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface ReferenceMta {
  /** Postfix's smtpd, on 127.0.0.1. */
  smtpPort: number;
  /** Messages Dovecot has stored (files in the Maildirs' new/ folders). */
  stored(): number;
  /** When the last message was stored (newest file's mtime), ms since the epoch. */
  lastStoredAt(): number;
  /** CPU (ms) used so far by every Postfix and Dovecot process, the ones that ended included. */
  cpuMs(): number;
  close(): Promise<void>;
}

const POSTFIX = '/usr/sbin/postfix';
const DOVECOT = '/usr/sbin/dovecot';

/** Why the reference cannot run here, or null when it can. */
export function referenceUnavailable(): string | null {
  if (!existsSync(POSTFIX) || !existsSync(DOVECOT) || !existsSync('/usr/lib/dovecot/lmtp') || !existsSync('/usr/sbin/smtp-sink')) {
    return 'Postfix and Dovecot are not installed (apt-get install postfix dovecot-core dovecot-lmtpd)';
  }
  if (process.getuid?.() !== 0) return 'the reference needs root: Postfix and Dovecot start as root and drop to their own users';
  return null;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

function ids(user: string): { uid: number; gid: number } {
  const uid = Number(execFileSync('id', ['-u', user], { encoding: 'utf8' }).trim());
  const gid = Number(execFileSync('id', ['-g', user], { encoding: 'utf8' }).trim());
  return { uid, gid };
}

async function waitForPort(port: number, what: string, log: string): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, '127.0.0.1', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${what} did not start; its log ${log}:\n${existsSync(log) ? readFileSync(log, 'utf8').slice(-2000) : '(none)'}`);
}

/**
 * CPU (utime + stime) of the masters and of their live children, plus, through the masters'
 * cutime/cstime, that of the children they have reaped (Postfix's and Dovecot's daemons are all
 * children of their master).
 */
function processCpuMs(masters: number[]): number {
  let ms = 0;
  const seen = new Set<number>();
  const add = (pid: number, withChildren: boolean): void => {
    if (seen.has(pid)) return;
    seen.add(pid);
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(') ') + 2).split(' ');
      // utime, stime, and for a master the reaped children's cutime, cstime (clock ticks of 10 ms).
      ms += (Number(f[11]) + Number(f[12]) + (withChildren ? Number(f[13]) + Number(f[14]) : 0)) * 10;
    } catch {
      // ended meanwhile: its time is in its parent's cutime once reaped
    }
  };
  for (const pid of masters) add(pid, true);
  for (const entry of readdirSync('/proc')) {
    const pid = Number(entry);
    if (!Number.isInteger(pid) || seen.has(pid)) continue;
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(') ') + 2).split(' ')[1]);
      if (masters.includes(ppid)) add(pid, false);
    } catch {
      // ended meanwhile
    }
  }
  return ms;
}

/** Starts Postfix → LMTP → Dovecot with a mailbox for each of `addresses` (all on one domain). */
export async function startReferenceMta(addresses: string[]): Promise<ReferenceMta> {
  const why = referenceUnavailable();
  if (why) throw new Error(why);
  const domain = addresses[0]!.split('@')[1]!;
  const dir = mkdtempSync(join(tmpdir(), 'mailmux-reference-'));
  chmodSync(dir, 0o755); // Postfix's and Dovecot's users work below it
  const [smtpPort, lmtpPort] = [await freePort(), await freePort()];
  const mail = ids('mail');
  const postfixUser = ids('postfix');

  // Dovecot: LMTP only, Maildir, its default fsync policy (fsync each delivered message).
  const dc = join(dir, 'dovecot');
  mkdirSync(join(dc, 'run'), { recursive: true });
  mkdirSync(join(dc, 'state'), { recursive: true });
  const store = join(dir, 'mail');
  mkdirSync(store);
  chownSync(store, mail.uid, mail.gid);
  const dovecotLog = join(dc, 'dovecot.log');
  writeFileSync(
    join(dc, 'dovecot.conf'),
    `base_dir = ${dc}/run
state_dir = ${dc}/state
protocols = lmtp
listen = 127.0.0.1
log_path = ${dovecotLog}
ssl = no
mail_location = maildir:${store}/%d/%n
first_valid_uid = ${mail.uid}
passdb {
  driver = static
  args = nopassword=y
}
userdb {
  driver = static
  args = uid=${mail.uid} gid=${mail.gid} home=${store}/%d/%n
}
service lmtp {
  inet_listener lmtp {
    address = 127.0.0.1
    port = ${lmtpPort}
  }
}
`,
  );
  execFileSync(DOVECOT, ['-c', join(dc, 'dovecot.conf')], { stdio: 'ignore' }); // it forks: no pipes to wait on
  await waitForPort(lmtpPort, 'Dovecot', dovecotLog);
  const dovecotPid = Number(readFileSync(join(dc, 'run', 'master.pid'), 'utf8').trim());

  // Postfix: Debian's master.cf without chroot, smtpd on its own port, virtual mailboxes for the
  // addresses (unknown ones rejected at RCPT, as Mailmux does), delivery over LMTP.
  const pf = join(dir, 'postfix');
  mkdirSync(pf);
  mkdirSync(join(dir, 'queue'));
  mkdirSync(join(dir, 'postfix-data'));
  chownSync(join(dir, 'postfix-data'), postfixUser.uid, postfixUser.gid);
  const postfixLog = join(dir, 'postfix.log');
  writeFileSync(join(pf, 'mailboxes'), addresses.map((a) => `${a} OK\n`).join(''));
  writeFileSync(
    join(pf, 'main.cf'),
    `compatibility_level = 3.6
queue_directory = ${dir}/queue
data_directory = ${dir}/postfix-data
mail_owner = postfix
setgid_group = postdrop
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
myhostname = reference.bench.example
mydomain = bench.example
mydestination =
mynetworks = 127.0.0.0/8
virtual_mailbox_domains = ${domain}
virtual_mailbox_maps = texthash:${pf}/mailboxes
virtual_transport = lmtp:inet:127.0.0.1:${lmtpPort}
maillog_file = ${postfixLog}
maillog_file_prefixes = ${dir}
alias_maps =
alias_database =
smtputf8_enable = no
`,
  );
  const master = readFileSync('/etc/postfix/master.cf', 'utf8')
    .split('\n')
    .map((line) => {
      if (/^smtp\s+inet\s/.test(line)) return `127.0.0.1:${smtpPort} inet n - n - - smtpd`;
      // the chroot column (fifth) to n: the queue lives in this folder, with no chroot set up
      const m = /^(\S+\s+\S+\s+\S+\s+\S+\s+)y(\s.*)$/.exec(line);
      return m ? `${m[1]}n${m[2]}` : line;
    })
    .join('\n');
  writeFileSync(join(pf, 'master.cf'), master);
  execFileSync(POSTFIX, ['-c', pf, 'start'], { stdio: 'ignore' });
  await waitForPort(smtpPort, 'Postfix', postfixLog);
  const postfixPid = Number(readFileSync(join(dir, 'queue', 'pid', 'master.pid'), 'utf8').trim());

  const maildirs = (): string[] => addresses.map((a) => join(store, domain, a.split('@')[0]!, 'new'));
  const files = (d: string): string[] => {
    try {
      return readdirSync(d);
    } catch {
      return [];
    }
  };
  return {
    smtpPort,
    stored: () => maildirs().reduce((n, d) => n + files(d).length, 0),
    lastStoredAt() {
      let last = 0;
      for (const d of maildirs()) for (const f of files(d)) last = Math.max(last, statSync(join(d, f)).mtimeMs);
      return last;
    },
    cpuMs: () => processCpuMs([postfixPid, dovecotPid]),
    async close() {
      try {
        execFileSync(POSTFIX, ['-c', pf, 'stop'], { stdio: 'ignore' });
      } finally {
        execFileSync('/usr/bin/doveadm', ['-c', join(dc, 'dovecot.conf'), 'stop'], { stdio: 'ignore' });
      }
      for (let i = 0; i < 50 && existsSync(`/proc/${postfixPid}`); i++) await new Promise((r) => setTimeout(r, 100));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * Postfix's smtp-sink: answers every command at once and stores nothing, the "bare SMTP
 * protocol ceiling" (there with smtp-source as the client; here with the bench's own senders, so it
 * shows how fast those can go on this machine at all).
 */
export async function startSmtpSink(): Promise<{ smtpPort: number; close(): Promise<void> }> {
  const port = await freePort();
  const child = spawn('/usr/sbin/smtp-sink', ['-u', 'postfix', `127.0.0.1:${port}`, '256'], { stdio: 'ignore' });
  await waitForPort(port, 'smtp-sink', '(smtp-sink logs nothing)');
  return {
    smtpPort: port,
    close: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}
