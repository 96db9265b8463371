// The mailmux command: `serve` (default) runs the server; `keys create-root | list-root |
// revoke-root <id>` manage root API keys directly in the configured store.
import { parseArgs } from 'node:util';
import { loadConfig } from '../config/config.ts';
import { openServices, startMailmux } from '../app/app.ts';
import { silentLogger } from '../services/context.ts';

const USAGE = `usage:
  mailmux [serve]                      run the server (configuration: MAILMUX_* environment variables)
  mailmux keys create-root [--name N]  mint a root API key (printed once)
  mailmux keys list-root               list root keys (never their secrets)
  mailmux keys revoke-root <key id>    revoke a root key`;

async function serve(): Promise<void> {
  const config = loadConfig();
  const running = await startMailmux(config);
  const lines = [
    '',
    'Mailmux is running.',
    `  REST API        ${running.httpUrl}/api/v1   (public URL ${config.publicUrl}/api/v1)`,
    `  Default domain  ${config.defaultDomain}`,
    `  Storage         ${config.databaseUrl ? 'PostgreSQL' : `SQLite in ${config.dataDir}`}`,
    // The bound port, which differs from the configured one when that is 0 (any free port).
    `  Ports           http ${running.httpUrl.slice(running.httpUrl.lastIndexOf(':') + 1)} · smtp ${running.smtpPort} (inbound MX) · submission ${running.submissionPort} (STARTTLS) and ${running.submissionsPort} (TLS) · IMAP not built yet`,
  ];
  if (running.initialRootKey) {
    lines.push('', '  Root API key (shown once, store it now):', `    ${running.initialRootKey}`);
  }
  lines.push('');
  process.stdout.write(`${lines.join('\n')}\n`);
  let closing = false;
  const shutdown = (signal: string): void => {
    if (closing) return;
    closing = true;
    running.services.log.info({ event: 'shutdown', signal });
    running.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.on('SIGINT', () => shutdown('SIGINT'));
  process.on('SIGTERM', () => shutdown('SIGTERM'));
}

/** The key command and its arguments, or null for bad usage (checked before the store is opened). */
function parseKeys(args: string[]): { command: 'create-root' | 'list-root' | 'revoke-root'; name: string | null; id: string } | null {
  let parsed;
  try {
    parsed = parseArgs({ args, options: { name: { type: 'string' } }, allowPositionals: true, strict: true });
  } catch {
    return null; // unknown option or --name without a value
  }
  const [command, id, ...extra] = parsed.positionals;
  const name = parsed.values.name ?? null;
  if (extra.length > 0) return null;
  if (command === 'create-root' && id === undefined) return { command, name, id: '' };
  if (command === 'list-root' && id === undefined && name === null) return { command, name, id: '' };
  if (command === 'revoke-root' && id !== undefined && name === null) return { command, name, id };
  return null;
}

async function keys(args: string[]): Promise<number> {
  const cmd = parseKeys(args);
  if (!cmd) {
    process.stderr.write(`${USAGE}\n`);
    return 2;
  }
  const config = loadConfig();
  const { store, services } = await openServices(config, { log: silentLogger });
  try {
    await services.teams.bootstrap().then((k) => {
      if (k) process.stderr.write(`created the first team; its initial root key is ${k.secret}\n`);
    });
    switch (cmd.command) {
      case 'create-root': {
        const key = await services.teams.createRootKey(cmd.name);
        process.stdout.write(`${key.secret}\n`);
        process.stderr.write(`root key ${key.id} created for team ${key.teamId}; the secret above is shown once\n`);
        return 0;
      }
      case 'list-root': {
        for (const k of await services.teams.listRootKeys()) {
          process.stdout.write(`${k.id}\t${k.key_prefix}…${k.key_suffix}\t${k.revoked_at ? `revoked ${k.revoked_at}` : 'active'}\t${k.created_at}\t${k.name ?? ''}\n`);
        }
        return 0;
      }
      case 'revoke-root': {
        await services.teams.revokeRootKey(cmd.id);
        process.stdout.write(`revoked ${cmd.id}\n`);
        return 0;
      }
    }
  } finally {
    await services.ingest.close();
    await store.close();
  }
}

async function main(argv: string[]): Promise<number> {
  const [command = 'serve', ...rest] = argv;
  if (command === 'serve') {
    await serve();
    return -1;
  }
  if (command === 'keys') return keys(rest);
  process.stderr.write(`${USAGE}\n`);
  return command === 'help' || command === '--help' ? 0 : 2;
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code >= 0) process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`mailmux: ${(err as Error).message}\n`);
    process.exitCode = 1;
  },
);
