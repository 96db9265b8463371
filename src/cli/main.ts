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
    `  Ports           http ${config.httpPort} · smtp ${config.smtpPort} · submission ${config.submissionPort}/${config.submissionsPort} · imap ${config.imapPort}/${config.imapsPort}`,
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

async function keys(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args, options: { name: { type: 'string' } }, allowPositionals: true });
  const config = loadConfig();
  const { store, services } = await openServices(config, { log: silentLogger });
  try {
    await services.teams.bootstrap().then((k) => {
      if (k) process.stderr.write(`created the first team; its initial root key is ${k.secret}\n`);
    });
    switch (positionals[0]) {
      case 'create-root': {
        const key = await services.teams.createRootKey(values.name ?? null);
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
        const id = positionals[1];
        if (!id) break;
        await services.teams.revokeRootKey(id);
        process.stdout.write(`revoked ${id}\n`);
        return 0;
      }
    }
    process.stderr.write(`${USAGE}\n`);
    return 2;
  } finally {
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
