/**
 * `npm start`: the whole stack on the embedded defaults. Starts Ory Hydra
 * (built once from its Go module, then cached) unless HYDRA_PUBLIC_URL /
 * HYDRA_ADMIN_URL point at one already running, then our server. Ctrl-C
 * stops both.
 */
import 'dotenv/config';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { loadStartConfig } from '../src/config/startConfig.js';
import { startServer } from '../src/main.js';
import { ensureHydraBinary, type RunningHydra, startHydra } from './hydra.js';

const say = (line: string) => process.stdout.write(`${line}\n`);

/** A stable system secret for the embedded Hydra's database, made once and kept in ./data. */
function hydraSecret(dataDir: string): string {
  const file = resolve(dataDir, 'hydra-system-secret');
  if (!existsSync(file)) writeFileSync(file, randomBytes(32).toString('hex'), { mode: 0o600 });
  return readFileSync(file, 'utf8').trim();
}

async function main() {
  // Fail fast, naming each wrong variable (the server's and the embedded Hydra's), before building anything.
  const { server: config, embeddedHydra } = loadStartConfig(process.env);
  const env: Record<string, string | undefined> = { ...process.env };
  let hydra: RunningHydra | undefined;

  if (embeddedHydra) {
    const dataDir = resolve(embeddedHydra.dataDir);
    mkdirSync(dataDir, { recursive: true });
    say('Preparing Ory Hydra (the first run builds it from Go modules, a few minutes)…');
    const binary = await ensureHydraBinary({ log: (l) => process.stderr.write(`  ${l}\n`) });
    const base = config.publicBaseUrl.href.replace(/\/$/, '');
    hydra = await startHydra({
      binary,
      publicPort: Number(config.hydra.publicUrl.port || 4444),
      adminPort: Number(config.hydra.adminUrl.port || 4445),
      dsn: resolve(dataDir, 'hydra.sqlite'),
      accessTokenStrategy: embeddedHydra.accessTokenStrategy,
      loginUrl: `${base}/login`,
      consentUrl: `${base}/consent`,
      logoutUrl: `${base}/logout`,
      errorUrl: `${base}/oauth-error`,
      tokenUrl: `${base}/token`,
      secretsSystem: hydraSecret(dataDir),
      log: (line) => embeddedHydra.showLogs && process.stderr.write(`[hydra] ${line}\n`),
    });
    env.HYDRA_PUBLIC_URL = hydra.publicUrl;
    env.HYDRA_ADMIN_URL = hydra.adminUrl;
    env.HYDRA_ISSUER = hydra.issuer;
    say(`Ory Hydra ${hydra.version} is up: public ${hydra.publicUrl}, admin ${hydra.adminUrl} (loopback only)`);
  }

  const server = await startServer(env).catch(async (error: unknown) => {
    await hydra?.stop();
    throw error;
  });
  say('');
  say(`hydra-mcp is running at ${server.url}`);
  say(`  MCP endpoint (paste into MCP Inspector, transport "Streamable HTTP"): ${config.resourceUrl.href}`);
  say(`  Legacy SSE endpoint: ${config.publicBaseUrl.href.replace(/\/$/, '')}/sse`);
  say('  Create a user first:  npm run user -- add you@example.com   (asks for a password)');
  say('  Inspector:            npx @modelcontextprotocol/inspector   then Connect, and sign in when the browser asks');
  say('Press Ctrl-C to stop.');

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    say(`\n${signal}: stopping…`);
    await server.stop().catch((e: unknown) => console.error('server stop failed:', e));
    await hydra?.stop().catch((e: unknown) => console.error('hydra stop failed:', e));
    process.exit(0);
  };
  process.once('SIGINT', () => void stop('SIGINT'));
  process.once('SIGTERM', () => void stop('SIGTERM'));
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});
