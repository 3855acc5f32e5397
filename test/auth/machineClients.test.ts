import { InvalidTokenError, ServerError, TemporarilyUnavailableError } from '../../src/auth/oauthErrors.js';
import { describe, expect, it } from 'vitest';
import { isMachineClient, MACHINE_METADATA, MachineClients } from '../../src/auth/machineClients.js';
import { principalOf } from '../../src/auth/principal.js';
import { ResourceSet } from '../../src/auth/resource.js';
import { HydraTokenVerifier } from '../../src/auth/tokenVerifier.js';
import { type HydraAdmin, type HydraClient, HydraError } from '../../src/hydra/index.js';
import { createLogger } from '../../src/log/logger.js';

const log = createLogger('silent');
const machine: HydraClient = { client_id: 'm-1', grant_types: ['client_credentials'], metadata: { ...MACHINE_METADATA } };
// What Hydra v2.3 answers for a client made by dynamic registration: metadata {} (DCR cannot set it).
const registered: HydraClient = { client_id: 'dcr-1', grant_types: ['client_credentials'], metadata: {} };

/** A stub of Hydra's admin getClient (unit test: counts the lookups, answers from a table). */
function stubAdmin(clients: Record<string, HydraClient | Error>) {
  const calls: string[] = [];
  const hydraAdmin: Pick<HydraAdmin, 'getClient'> = {
    async getClient(id) {
      calls.push(id);
      await new Promise((r) => setTimeout(r, 5));
      const c = clients[id];
      if (c instanceof Error) throw c;
      return c;
    },
  };
  return { hydraAdmin, calls };
}

describe('isMachineClient', () => {
  it.each<[string, Pick<HydraClient, 'metadata' | 'grant_types'>, boolean]>([
    ['operator-made: metadata.machine true and client_credentials', machine, true],
    ['registered by DCR (metadata {})', registered, false],
    ['no metadata at all (null, as Hydra may send)', { metadata: null, grant_types: ['client_credentials'] }, false],
    ['metadata.machine as the string "true"', { metadata: { machine: 'true' }, grant_types: ['client_credentials'] }, false],
    ['metadata.machine 1', { metadata: { machine: 1 }, grant_types: ['client_credentials'] }, false],
    ['machine metadata but no client_credentials grant', { metadata: { machine: true }, grant_types: ['authorization_code'] }, false],
    ['machine metadata and grant_types null', { metadata: { machine: true }, grant_types: null }, false],
    ['a CIMD mirror (metadata.cimd)', { metadata: { cimd: true }, grant_types: ['client_credentials'] }, false],
  ])('%s → %s', (_name, client, expected) => {
    expect(isMachineClient(client)).toBe(expected);
  });
});

describe('MachineClients.kindOf (stub Hydra admin)', () => {
  it('a person (sub ≠ client id) is decided synchronously, without asking Hydra', () => {
    const { hydraAdmin, calls } = stubAdmin({});
    const m = new MachineClients({ hydraAdmin, log });
    expect(m.kindOf({ sub: 'alice', clientId: 'dcr-1' })).toBe('person');
    expect(calls).toEqual([]);
  });

  it('an operator-made machine client is a machine; the answer is cached (synchronous on the next call)', async () => {
    const { hydraAdmin, calls } = stubAdmin({ 'm-1': machine });
    const m = new MachineClients({ hydraAdmin, log });
    expect(await m.kindOf({ sub: 'm-1', clientId: 'm-1' })).toBe('machine');
    expect(m.kindOf({ sub: 'm-1', clientId: 'm-1' })).toBe('machine');
    expect(calls).toEqual(['m-1']);
  });

  it('concurrent checks of one client share one lookup', async () => {
    const { hydraAdmin, calls } = stubAdmin({ 'm-1': machine });
    const m = new MachineClients({ hydraAdmin, log });
    const kinds = await Promise.all(Array.from({ length: 20 }, () => m.kindOf({ sub: 'm-1', clientId: 'm-1' })));
    expect(new Set(kinds)).toEqual(new Set(['machine']));
    expect(calls).toEqual(['m-1']);
  });

  it.each([
    ['a DCR client that obtained client credentials', 'dcr-1'],
    ['a client Hydra does not know (deleted)', 'gone'],
  ])('refuses %s: 401 invalid_token saying machine clients are made by an operator', async (_name, id) => {
    const { hydraAdmin } = stubAdmin({ 'dcr-1': registered });
    const m = new MachineClients({ hydraAdmin, log });
    const err = await Promise.resolve()
      .then(() => m.kindOf({ sub: id, clientId: id }))
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InvalidTokenError);
    expect((err as Error).message).toMatch(/not a machine client of this server.*npm run client -- add --machine/);
  });

  it('remembers a refusal for negativeTtlMs: a flood of one bad token costs one lookup', async () => {
    const { hydraAdmin, calls } = stubAdmin({ 'dcr-1': registered });
    const m = new MachineClients({ hydraAdmin, log, negativeTtlMs: 60_000 });
    await Promise.resolve(m.kindOf({ sub: 'dcr-1', clientId: 'dcr-1' })).catch(() => undefined);
    // Cached: refused synchronously from now on.
    for (let i = 0; i < 5; i++) expect(() => m.kindOf({ sub: 'dcr-1', clientId: 'dcr-1' })).toThrow(InvalidTokenError);
    expect(calls).toEqual(['dcr-1']);
  });

  it('asks again once the TTL has passed (a removed machine client stops being one)', async () => {
    const clients: Record<string, HydraClient> = { 'm-1': machine };
    const { hydraAdmin, calls } = stubAdmin(clients);
    const m = new MachineClients({ hydraAdmin, log, cacheTtlMs: 20 });
    expect(await m.kindOf({ sub: 'm-1', clientId: 'm-1' })).toBe('machine');
    delete clients['m-1'];
    await new Promise((r) => setTimeout(r, 40));
    await expect(Promise.resolve(m.kindOf({ sub: 'm-1', clientId: 'm-1' }))).rejects.toBeInstanceOf(InvalidTokenError);
    expect(calls).toEqual(['m-1', 'm-1']);
  });

  it('forget() drops the cached answer at once', async () => {
    const { hydraAdmin, calls } = stubAdmin({ 'm-1': machine });
    const m = new MachineClients({ hydraAdmin, log });
    await m.kindOf({ sub: 'm-1', clientId: 'm-1' });
    m.forget('m-1');
    await m.kindOf({ sub: 'm-1', clientId: 'm-1' });
    expect(calls).toEqual(['m-1', 'm-1']);
  });

  it('Hydra unreachable → 503-style TemporarilyUnavailableError, not a 401, and nothing cached', async () => {
    const { hydraAdmin, calls } = stubAdmin({ 'm-1': new HydraError(0, 'temporarily_unavailable', 'Hydra unreachable') });
    const m = new MachineClients({ hydraAdmin, log });
    await expect(Promise.resolve(m.kindOf({ sub: 'm-1', clientId: 'm-1' }))).rejects.toBeInstanceOf(TemporarilyUnavailableError);
    await expect(Promise.resolve(m.kindOf({ sub: 'm-1', clientId: 'm-1' }))).rejects.toBeInstanceOf(TemporarilyUnavailableError);
    expect(calls).toEqual(['m-1', 'm-1']);
  });

  it('Hydra answering 400 on the lookup → ServerError (not a verdict on the token)', async () => {
    const { hydraAdmin } = stubAdmin({ 'm-1': new HydraError(400, 'invalid_request', 'odd') });
    const m = new MachineClients({ hydraAdmin, log });
    await expect(Promise.resolve(m.kindOf({ sub: 'm-1', clientId: 'm-1' }))).rejects.toBeInstanceOf(ServerError);
  });

  it.each([['cacheTtlMs', -1], ['negativeTtlMs', Number.NaN]] as const)('refuses %s = %s at construction, naming it', (name, value) => {
    expect(() => new MachineClients({ hydraAdmin: stubAdmin({}).hydraAdmin, log, [name]: value })).toThrow(new RegExp(name));
  });
});

describe('HydraTokenVerifier with machine clients (stub introspection and client lookup)', () => {
  const RESOURCE = new URL('http://127.0.0.1:3000/mcp');
  const now = () => Math.floor(Date.now() / 1000);
  const answers: Record<string, { sub: string; client_id: string }> = {
    person: { sub: 'alice', client_id: 'dcr-1' },
    machine: { sub: 'm-1', client_id: 'm-1' },
    registered: { sub: 'dcr-1', client_id: 'dcr-1' },
  };
  const make = (machineClients?: MachineClients) =>
    new HydraTokenVerifier({
      issuer: 'http://127.0.0.1:4444/',
      jwksUrl: new URL('http://127.0.0.1:1/jwks.json'),
      resources: new ResourceSet([RESOURCE]),
      hydraAdmin: {
        introspect: async (token: string) => ({ active: true, ...answers[token], exp: now() + 600, aud: [RESOURCE.href], token_use: 'access_token', scope: 'notes:read' }),
      } as unknown as HydraAdmin,
      log,
      introspectionCacheSeconds: 60,
      ...(machineClients ? { machineClients } : {}),
    });
  const machineClients = () => new MachineClients({ hydraAdmin: stubAdmin({ 'm-1': machine, 'dcr-1': registered }).hydraAdmin, log });

  it('a person token is a person principal', async () => {
    expect(principalOf(await make(machineClients()).verifyAccessToken('person'))).toMatchObject({ sub: 'alice', kind: 'person' });
  });

  it('a machine client’s client-credentials token is a machine principal whose sub is its client id', async () => {
    expect(principalOf(await make(machineClients()).verifyAccessToken('machine'))).toMatchObject({ sub: 'm-1', clientId: 'm-1', kind: 'machine' });
  });

  it('a DCR client’s client-credentials token → InvalidTokenError (401), on the cached path too', async () => {
    const v = make(machineClients());
    await expect(v.verifyAccessToken('registered')).rejects.toThrow(/not a machine client/);
    await expect(v.verifyAccessToken('registered')).rejects.toBeInstanceOf(InvalidTokenError);
  });

  it('without machineClients, every client-credentials token is refused: no machine by default', async () => {
    await expect(make().verifyAccessToken('machine')).rejects.toThrow(/does not accept client-credentials tokens/);
    expect(principalOf(await make().verifyAccessToken('person'))?.kind).toBe('person');
  });
});
