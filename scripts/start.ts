/**
 * `npm start`: the whole stack on the embedded defaults. Starts Ory Hydra
 * (built once from its Go module, then cached) unless HYDRA_PUBLIC_URL /
 * HYDRA_ADMIN_URL point at one already running; with IDENTITY=kratos, Ory
 * Kratos the same way (unless KRATOS_PUBLIC_URL / KRATOS_ADMIN_URL point at
 * one); then our server. Ctrl-C stops them all.
 */
import 'dotenv/config';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { loadStartConfig } from '../src/config/startConfig.js';
import { startServer } from '../src/main.js';
import { createLogger } from '../src/log/logger.js';
import { oryTracingEnv } from '../src/tracing/oryTracing.js';
import { startTracing } from '../src/tracing/startTracing.js';
import { ensureHydraBinary, ourPageUrls, type RunningHydra, startHydra } from './hydra.js';
import { ensureKratosBinary, type RunningKratos, startKratos } from './kratos.js';

const say = (line: string) => process.stdout.write(`${line}\n`);

/** A stable system secret for the embedded Hydra's database, made once and kept in ./data. */
function hydraSecret(dataDir: string): string {
  const file = resolve(dataDir, 'hydra-system-secret');
  if (!existsSync(file)) writeFileSync(file, randomBytes(32).toString('hex'), { mode: 0o600 });
  return readFileSync(file, 'utf8').trim();
}

/** Stable secrets for the embedded Kratos (cookie signing, token encryption), made once and kept in ./data. */
function kratosSecrets(dataDir: string): { default: string; cookie: string; cipher: string } {
  const file = resolve(dataDir, 'kratos-secrets.json');
  if (!existsSync(file)) {
    const secrets = {
      default: randomBytes(32).toString('hex'),
      cookie: randomBytes(32).toString('hex'),
      cipher: randomBytes(16).toString('hex'), // Kratos wants exactly 32 characters
    };
    writeFileSync(file, `${JSON.stringify(secrets, null, 2)}\n`, { mode: 0o600 });
  }
  return JSON.parse(readFileSync(file, 'utf8')) as { default: string; cookie: string; cipher: string };
}

async function main() {
  // Fail fast, naming each wrong variable (the server's and the embedded Hydra's), before building anything.
  const { server: config, embeddedHydra, embeddedKratos, tokenLifetimes } = loadStartConfig(process.env);
  // OTEL_* (off and never loaded without them): our server's spans, and the same collector for Hydra's and Kratos's own.
  const tracing = await startTracing(process.env, { log: createLogger('warn') });
  const env: Record<string, string | undefined> = { ...process.env };
  let hydra: RunningHydra | undefined;
  let kratos: RunningKratos | undefined;
  const stopOry = async () => {
    await kratos?.stop().catch((e: unknown) => console.error('kratos stop failed:', e));
    await hydra?.stop().catch((e: unknown) => console.error('hydra stop failed:', e));
  };

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
      ...ourPageUrls(base),
      tokenUrl: `${base}/token`,
      secretsSystem: hydraSecret(dataDir),
      tokenLifetimes,
      env: oryTracingEnv(tracing.settings, 'hydra'),
      log: (line) => embeddedHydra.showLogs && process.stderr.write(`[hydra] ${line}\n`),
    });
    env.HYDRA_PUBLIC_URL = hydra.publicUrl;
    env.HYDRA_ADMIN_URL = hydra.adminUrl;
    env.HYDRA_ISSUER = hydra.issuer;
    say(`Ory Hydra ${hydra.version} is up: public ${hydra.publicUrl}, admin ${hydra.adminUrl} (loopback only)`);
    say(`  token lifetimes: access ${tokenLifetimes.accessToken}, refresh ${tokenLifetimes.refreshToken} (rotated; grace ${tokenLifetimes.rotationGracePeriod}), ID ${tokenLifetimes.idToken}`);
  }

  if (embeddedKratos) {
    try {
      const dataDir = resolve(embeddedKratos.dataDir);
      mkdirSync(dataDir, { recursive: true });
      say('Preparing Ory Kratos (the first run builds it from Go modules, several minutes)…');
      const binary = await ensureKratosBinary({ log: (l) => process.stderr.write(`  ${l}\n`) });
      kratos = await startKratos({
        binary,
        // A SQLite file beside Hydra's; startKratos migrates it before serving.
        dsn: resolve(dataDir, 'kratos.sqlite'),
        publicPort: embeddedKratos.publicPort,
        adminPort: embeddedKratos.adminPort,
        // Kratos sends browsers to our /kratos/* pages and back to our /login.
        uiBaseUrl: config.publicBaseUrl.href,
        secrets: kratosSecrets(dataDir),
        env: oryTracingEnv(tracing.settings, 'kratos'),
        log: (line) => embeddedKratos.showLogs && process.stderr.write(`[kratos] ${line}\n`),
      });
    } catch (error) {
      await stopOry();
      throw error;
    }
    env.KRATOS_PUBLIC_URL = kratos.publicUrl;
    env.KRATOS_ADMIN_URL = kratos.adminUrl;
    say(`Ory Kratos ${kratos.version} is up: public ${kratos.publicUrl}, admin ${kratos.adminUrl} (loopback only)`);
  }

  const server = await startServer(env).catch(async (error: unknown) => {
    await stopOry();
    throw error;
  });
  say('');
  say(`hydra-mcp is running at ${server.url}`);
  say(`  MCP endpoint (paste into MCP Inspector, transport "Streamable HTTP"): ${config.resourceUrl.href}`);
  say(`  Legacy SSE endpoint: ${config.publicBaseUrl.href.replace(/\/$/, '')}/sse`);
  if (config.identity.kind === 'kratos') {
    say(`  Accounts live in Ory Kratos (${config.identity.publicUrl.href.replace(/\/$/, '')}): sign in, or choose "Create an account", when the browser asks`);
  } else {
    say('  Create a user first:  npm run user -- add you@example.com   (asks for a password)');
  }
  say('  Inspector:            npx @modelcontextprotocol/inspector   then Connect, and sign in when the browser asks');
  say('Press Ctrl-C to stop.');

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    say(`\n${signal}: stopping…`);
    await server.stop().catch((e: unknown) => console.error('server stop failed:', e));
    await stopOry();
    await tracing.shutdown().catch(() => {});
    process.exit(0);
  };
  process.once('SIGINT', () => void stop('SIGINT'));
  process.once('SIGTERM', () => void stop('SIGTERM'));
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});
