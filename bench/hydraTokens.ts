/**
 * Real tokens in bulk, straight from Hydra: client_credentials clients made
 * at the admin API, tokens from the public token endpoint. Each token names
 * one of our servers as its audience, as a token from the user flow does.
 * The clients are machine clients, as `npm run client -- add --machine`
 * makes them (metadata and owner from src/auth/machineClients.ts): the
 * server refuses client-credentials tokens of any other client, and lets a
 * machine call only tools open to machines (the bench calls whoami).
 */
import { MACHINE_METADATA, MACHINE_OWNER } from '../src/auth/machineClients.js';

export interface BenchClient {
  clientId: string;
  secret: string;
}

const SCOPE = 'notes:read notes:write';

/** A confidential machine client allowed the client_credentials grant and the given audiences. */
export async function createClient(adminUrl: string, audience: string[], name = 'bench'): Promise<BenchClient> {
  const secret = `bench-secret-${crypto.randomUUID()}`;
  const { client_id } = await postClient(adminUrl, {
    client_name: name,
    client_secret: secret,
    grant_types: ['client_credentials'],
    response_types: ['token'],
    token_endpoint_auth_method: 'client_secret_post',
    scope: SCOPE,
    audience,
    metadata: MACHINE_METADATA,
    owner: MACHINE_OWNER,
  });
  return { clientId: client_id, secret };
}

/** Public clients that only sit in Hydra's list (the introspect-everything pattern has to page through them). */
export async function createIdleClients(adminUrl: string, count: number, concurrency = 8): Promise<void> {
  await inParallel(count, concurrency, async (i) => {
    await postClient(adminUrl, {
      client_name: `registered client ${i}`,
      redirect_uris: [`http://127.0.0.1:${20000 + (i % 1000)}/callback`],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
      scope: 'openid offline_access notes:read',
    });
  });
}

/** POST /admin/clients; any answer but 201 is an error naming what Hydra said. */
async function postClient(adminUrl: string, client: Record<string, unknown>): Promise<{ client_id: string }> {
  const res = await fetch(new URL('/admin/clients', adminUrl), {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(client),
  });
  if (res.status !== 201) throw new Error(`creating client "${String(client.client_name)}" failed: ${res.status} ${await res.text()}`);
  return (await res.json()) as { client_id: string };
}

/** One access token for `audience`. */
export async function mintToken(publicUrl: string, client: BenchClient, audience: string): Promise<string> {
  const post = () =>
    fetch(new URL('/oauth2/token', publicUrl), {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'client_credentials', client_id: client.clientId, client_secret: client.secret, scope: SCOPE, audience }),
    });
  // A kept connection Hydra closed while idle (a slow start on a busy machine) fails before any answer: once more, on a new one.
  const res = await post().catch((e: unknown) => {
    if ((e as { cause?: { code?: string } }).cause?.code !== 'UND_ERR_SOCKET') throw e;
    return post();
  });
  if (res.status !== 200) throw new Error(`client_credentials failed: ${res.status} ${await res.text()}`);
  return ((await res.json()) as { access_token: string }).access_token;
}

/** `count` distinct tokens for `audience`, `concurrency` requests at a time. */
export async function mintTokens(publicUrl: string, client: BenchClient, audience: string, count: number, concurrency = 8): Promise<string[]> {
  const tokens = new Array<string>(count);
  await inParallel(count, concurrency, async (i) => {
    tokens[i] = await mintToken(publicUrl, client, audience);
  });
  return tokens;
}

/** Run task(0..count-1) with at most `concurrency` in flight. */
export async function inParallel(count: number, concurrency: number, task: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < count) await task(next++);
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
}
