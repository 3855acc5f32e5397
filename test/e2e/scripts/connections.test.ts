import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createConnectFlow, verifierBinding } from '../../../src/connections/connectFlow.js';
import { createProviderClient } from '../../../src/connections/providerClient.js';
import { type ConnectionKey, createSealer } from '../../../src/connections/sealing.js';
import { createLogger } from '../../../src/log/logger.js';
import { connectionsStore } from '../../../src/store/connectionsStore.js';
import { connectStatesStore } from '../../../src/store/connectStatesStore.js';
import { openDatabase } from '../../../src/store/database.js';

const ROOT = fileURLToPath(new URL('../../..', import.meta.url));

const newKey = (kid: string): ConnectionKey => ({ kid, key: new Uint8Array(randomBytes(32)) });
const keysVar = (...keys: ConnectionKey[]) => keys.map((k) => `${k.kid}:${Buffer.from(k.key).toString('base64url')}`).join(',');

/** Run scripts/connections.ts under tsx, as `npm run connections -- <args>` does, from `cwd` (no .env there). */
function runScript(args: string[], cwd: string, env: Record<string, string | undefined>): Promise<{ code: number | null; out: string; err: string }> {
  const merged: Record<string, string> = {};
  // Only what the test sets, plus PATH: a DATABASE_URL or key of the caller's shell must not leak in.
  for (const [k, v] of Object.entries({ PATH: process.env.PATH, ...env })) if (v !== undefined) merged[k] = v;
  const child = spawn(process.execPath, [join(ROOT, 'node_modules/tsx/dist/cli.mjs'), join(ROOT, 'scripts/connections.ts'), ...args], { cwd, env: merged, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d));
  child.stderr.on('data', (d: Buffer) => (err += d));
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, out, err })));
}

describe('npm run connections -- reencrypt', () => {
  let dir: string;
  let env: Record<string, string>;
  const oldKey = newKey('old');
  const newerKey = newKey('new');

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'hydra-mcp-connections-cli-'));
    const catalogue = join(dir, 'connections.json');
    writeFileSync(
      catalogue,
      JSON.stringify({
        providers: {
          github: {
            displayName: 'GitHub',
            authorizationEndpoint: 'https://github.example/authorize',
            tokenEndpoint: 'https://github.example/token',
            clientId: 'c',
            clientSecret: 's',
            scopes: ['repo'],
          },
        },
      }),
    );
    env = { DATABASE_PATH: join(dir, 'store.sqlite'), CONNECTIONS_FILE: catalogue, METRICS_PORT: 'off' };
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  /** Store connections sealed with `keys[0]` for each [sub, provider]. */
  async function seed(keys: ConnectionKey[], rows: [string, string][]) {
    const db = await openDatabase({ kind: 'sqlite', path: env.DATABASE_PATH! });
    const sealer = createSealer(keys);
    const store = connectionsStore(db, 'sqlite');
    for (const [sub, provider] of rows) {
      const bind = { sub, provider };
      await store.upsert({ sub, provider, sealed: await sealer.seal({ accessToken: `at-${sub}`, refreshToken: `rt-${sub}` }, bind), keyId: sealer.newestKeyId });
    }
    await db.destroy();
  }

  /** Start connect attempts as the account page does (the real flow; its authorization URL needs no network), sealed with `keys[0]`; returns the people. */
  async function startAttempts(keys: ConnectionKey[], subs: string[]) {
    const db = await openDatabase({ kind: 'sqlite', path: env.DATABASE_PATH! });
    const github = createProviderClient({
      name: 'github',
      displayName: 'GitHub',
      authorizationEndpoint: 'https://github.example/authorize',
      tokenEndpoint: 'https://github.example/token',
      clientId: 'c',
      clientSecret: 's',
      tokenEndpointAuthMethod: 'client_secret_basic',
      scopes: ['repo'],
      pkce: true,
      authorizationParams: {},
    });
    const flow = createConnectFlow({ store: connectionsStore(db, 'sqlite'), states: connectStatesStore(db), sealer: createSealer(keys), providers: new Map([['github', github]]), publicBaseUrl: new URL('https://mcp.example'), log: createLogger('error', () => undefined) });
    for (const sub of subs) await flow.begin(sub, 'github');
    await db.destroy();
  }

  it('issue 26 #13: pending connect attempts are re-encrypted and counted too (their PKCE verifier opens with the new key alone); expired ones are deleted', async () => {
    await seed([oldKey], [['alice', 'github']]);
    await startAttempts([oldKey], ['bob', 'carol']);
    await startAttempts([newerKey], ['dan']);
    // An attempt that expired unused (its sealed verifier still names the old key).
    const setup = await openDatabase({ kind: 'sqlite', path: env.DATABASE_PATH! });
    await setup.insertInto('connect_states').values({ state_hash: 'expired', sub: 'erin', provider: 'github', sealed_verifier: await createSealer([oldKey]).seal({ accessToken: 'v' }, verifierBinding('erin', 'github')), browser_binding_hash: 'b', elicitation_id: null, expires_at: Date.now() - 1 }).execute();
    await setup.destroy();
    const keys = keysVar(newerKey, oldKey);

    const first = await runScript(['reencrypt'], dir, { ...env, CONNECTION_KEYS: keys });
    expect(first.err).toBe('');
    expect(first.out).toBe(
      'Re-encrypted 1 connection with key "new"\nRe-encrypted 2 pending connect attempts with key "new"\nConnections per key: new 1\nPending connect attempts per key: new 3\n',
    );
    expect(first.code).toBe(0);

    const db = await openDatabase({ kind: 'sqlite', path: env.DATABASE_PATH! });
    try {
      const sealer = createSealer([newerKey]);
      const attempts = await db.selectFrom('connect_states').select(['sub', 'provider', 'sealed_verifier']).orderBy('sub').execute();
      expect(attempts.map((a) => a.sub)).toEqual(['bob', 'carol', 'dan']);
      for (const a of attempts) {
        expect(sealer.keyIdOf(a.sealed_verifier)).toBe('new');
        expect((await sealer.open(a.sealed_verifier, verifierBinding(a.sub, a.provider))).accessToken).toMatch(/^[A-Za-z0-9_-]{43}$/);
      }
    } finally {
      await db.destroy();
    }
    const second = await runScript(['reencrypt'], dir, { ...env, CONNECTION_KEYS: keys });
    expect(second.out).toBe('Re-encrypted 0 connections with key "new"\nRe-encrypted 0 pending connect attempts with key "new"\nConnections per key: new 1\nPending connect attempts per key: new 3\n');
  });

  it('rewraps rows sealed with an old key, prints the counts; a second run rewraps none', async () => {
    await seed([oldKey], [['alice', 'github'], ['bob', 'github'], ['carol', 'notion']]);
    await seed([newerKey], [['dan', 'github']]);
    const keys = keysVar(newerKey, oldKey);

    const first = await runScript(['reencrypt'], dir, { ...env, CONNECTION_KEYS: keys });
    expect(first.err).toBe('');
    expect(first.code).toBe(0);
    expect(first.out).toBe('Re-encrypted 3 connections with key "new"\nRe-encrypted 0 pending connect attempts with key "new"\nConnections per key: new 4\nPending connect attempts per key: none pending\n');

    // Every row now opens with the new key alone, the credential unchanged.
    const db = await openDatabase({ kind: 'sqlite', path: env.DATABASE_PATH! });
    try {
      const sealer = createSealer([newerKey]);
      const store = connectionsStore(db, 'sqlite');
      for (const [sub, provider] of [['alice', 'github'], ['bob', 'github'], ['carol', 'notion'], ['dan', 'github']] as const) {
        const row = (await store.get(sub, provider))!;
        expect(row.keyId).toBe('new');
        expect(sealer.keyIdOf(row.sealed)).toBe('new');
        expect(await sealer.open(row.sealed, { sub, provider })).toEqual({ accessToken: `at-${sub}`, refreshToken: `rt-${sub}` });
      }
    } finally {
      await db.destroy();
    }

    const second = await runScript(['reencrypt'], dir, { ...env, CONNECTION_KEYS: keys });
    expect(second.code).toBe(0);
    expect(second.out).toBe('Re-encrypted 0 connections with key "new"\nRe-encrypted 0 pending connect attempts with key "new"\nConnections per key: new 4\nPending connect attempts per key: none pending\n');
  });

  it('a row sealed with a key no longer configured is reported (sub, provider, key id; no ciphertext), the others rewrapped, exit 1', async () => {
    const lost = newKey('lost');
    await seed([lost], [['erin', 'github']]);
    await seed([oldKey], [['frank', 'github']]);
    const r = await runScript(['reencrypt'], dir, { ...env, CONNECTION_KEYS: keysVar(newerKey, oldKey) });
    expect(r.code).toBe(1);
    expect(r.err).toBe('cannot open github of erin (sealed with key "lost"): unknown_key\n');
    expect(r.out).toContain('Re-encrypted 1 connection with key "new"\n');
    expect(r.out).toContain('1 could not be opened');
    expect(r.out).toContain('Connections per key: lost 1, new 1\n');
  });

  it.each([
    ['no command', [], 2, /usage: npm run connections/],
    ['an unknown command', ['rotate'], 2, /usage: npm run connections/],
    ['an extra argument', ['reencrypt', 'now'], 2, /usage: npm run connections/],
  ])('usage error: %s', async (_name, args, code, message) => {
    const r = await runScript(args, dir, env);
    expect(r.code).toBe(code);
    expect(r.err).toMatch(message);
  });

  it('refuses to run without connection settings, or with a bad CONNECTION_KEYS, naming the variable', async () => {
    const unset = await runScript(['reencrypt'], dir, { DATABASE_PATH: env.DATABASE_PATH, METRICS_PORT: 'off' });
    expect(unset.code).toBe(1);
    expect(unset.err).toMatch(/CONNECTIONS_FILE and CONNECTION_KEYS are not set/);
    const bad = await runScript(['reencrypt'], dir, { ...env, CONNECTION_KEYS: 'k1:tooshort' });
    expect(bad.code).toBe(1);
    expect(bad.err).toMatch(/CONNECTION_KEYS: entry 1 \("k1"\): the key must be 32 bytes/);
  });
});
