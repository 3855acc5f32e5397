/**
 * The credential scenario's fixture: a provider catalogue for the server, and
 * the fixed principal's connection sealed in each of its databases. The
 * provider's endpoints are never called: the stored token stays fresh.
 */
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createSealer, parseConnectionKeys } from '../src/connections/sealing.js';
import { connectionsStore } from '../src/store/connectionsStore.js';
import { openDatabase } from '../src/store/database.js';
import { BENCH_PROVIDER } from './credentialTool.js';

/** One key for the run: the bench seals the credential, the server opens it. */
export const newConnectionKeys = (): string => `bench:${randomBytes(32).toString('base64url')}`;

/** The catalogue naming BENCH_PROVIDER, written to `dir`, and the server settings that point at it. */
export async function credentialEnv(dir: string, connectionKeys: string): Promise<Record<string, string>> {
  const file = join(dir, 'connections.json');
  const endpoint = 'http://127.0.0.1:9/never-called';
  await writeFile(
    file,
    JSON.stringify({ providers: { [BENCH_PROVIDER]: { displayName: 'Bench', authorizationEndpoint: endpoint, tokenEndpoint: endpoint, clientId: 'bench', clientSecret: 'bench-secret', scopes: ['read'] } } }),
  );
  return { CONNECTIONS_FILE: file, CONNECTION_KEYS: connectionKeys };
}

/** `sub`'s connection, sealed as the connect flow would store it, valid for a day. */
export async function seedCredential(path: string, sub: string, connectionKeys: string): Promise<void> {
  const db = await openDatabase({ kind: 'sqlite', path });
  try {
    const sealer = createSealer(parseConnectionKeys(connectionKeys));
    const credential = { accessToken: 'bench-upstream-access-token', refreshToken: 'bench-upstream-refresh-token', expiresAt: Math.floor(Date.now() / 1000) + 86_400 };
    await connectionsStore(db, 'sqlite').upsert({ sub, provider: BENCH_PROVIDER, sealed: await sealer.seal(credential, { sub, provider: BENCH_PROVIDER }), keyId: sealer.newestKeyId, expiresAt: credential.expiresAt });
  } finally {
    await db.destroy();
  }
}
