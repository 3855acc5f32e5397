import type { Logger } from '../log/logger.js';
import type { Db, Dialect } from '../store/database.js';
import { connectionsStore } from '../store/connectionsStore.js';
import { connectStatesStore } from '../store/connectStatesStore.js';
import { type ConnectFlow, createConnectFlow } from './connectFlow.js';
import { type ConnectLinks, createConnectLinks } from './connectLink.js';
import { connectionVersions } from '../store/connectionVersions.js';
import { type CredentialOutcome, type CredentialService, createCredentialService } from './credentials.js';
import { createProviderClient, type ProviderCall, type ProviderClient } from './providerClient.js';
import type { ProviderConfig } from './providers.js';
import { type ConnectionKey, createSealer } from './sealing.js';

/** Connected-account settings (from CONNECTIONS_FILE, CONNECTION_KEYS, CONNECT_WAIT_SECONDS; src/config/). */
export interface ConnectionsSettings {
  providers: ProviderConfig[];
  /** Sealing keys, newest first. */
  keys: ConnectionKey[];
  /** Longest wait for a person to connect during a tool call, in seconds. */
  waitSeconds: number;
}

export interface Connections {
  credentials: CredentialService;
  flow: ConnectFlow;
  links: ConnectLinks;
  providers: ReadonlyMap<string, ProviderClient>;
  /** Longest wait for a person to connect during a tool call, ms. */
  waitMs: number;
}

/**
 * Connected accounts, composed from config: the one place that knows which
 * store, keys and provider clients the credential service and the connect
 * flow share. Undefined when no CONNECTIONS_FILE is configured.
 */
export function createConnections(deps: {
  settings: ConnectionsSettings | undefined;
  db: Db;
  dialect: Dialect;
  publicBaseUrl: URL;
  /** Signs the connect links (HMAC with its own label). */
  secret: string;
  log: Logger;
  onCredentialUse?: (provider: string, outcome: CredentialOutcome, sub: string, requestId?: string) => void;
  /** How long each of a tool's requests for a provider's access token took (CredentialServiceOptions.onTimed). */
  onCredentialTimed?: (provider: string, outcome: CredentialOutcome, seconds: number) => void;
  /** Every call to a provider's endpoints (ProviderClientOptions.onCall), by provider name. */
  onProviderCall?: (provider: string, call: ProviderCall, outcome: 'ok' | 'refused' | 'unavailable') => void;
}): Connections | undefined {
  const { settings, log } = deps;
  if (!settings) return undefined;
  // A refresh (with a first discovery: two provider requests of at most 5 s each) must end well inside the lease.
  const store = connectionsStore(deps.db, deps.dialect, { leaseMs: 25_000, lockWaitMs: 30_000 });
  const sealer = createSealer(settings.keys);
  const { onProviderCall } = deps;
  const providers = new Map(
    settings.providers.map((p) => [p.name, createProviderClient(p, { timeoutMs: 5_000, ...(onProviderCall ? { onCall: (call, outcome) => onProviderCall(p.name, call, outcome) } : {}) })]),
  );
  const clog = log.child({ component: 'connections' });
  // Every use checks the row's version in the shared database before serving an opened copy.
  const versions = connectionVersions(deps.db, deps.dialect, store);
  const credentials = createCredentialService({
    store,
    sealer,
    providers,
    log: clog,
    versions,
    ...(deps.onCredentialUse ? { onUse: deps.onCredentialUse } : {}),
    ...(deps.onCredentialTimed ? { onTimed: deps.onCredentialTimed } : {}),
  });
  return {
    providers,
    waitMs: settings.waitSeconds * 1000,
    credentials,
    flow: createConnectFlow({ store, states: connectStatesStore(deps.db), sealer, providers, publicBaseUrl: deps.publicBaseUrl, log: clog, forget: credentials.forget }),
    links: createConnectLinks({ publicBaseUrl: deps.publicBaseUrl, secret: `${deps.secret}\0connect-links` }),
  };
}

/**
 * The tools to serve, given the configured providers. Without CONNECTIONS_FILE
 * connected accounts are off: tools that need one are left out (returned in
 * `skipped`, for a warning). With it, every provider a tool names must be in
 * the catalogue: a typo stops the start instead of failing a person's call.
 */
export function toolsWithProviders<T extends { name: string; credentials?: readonly string[] }>(tools: readonly T[], providers: ReadonlySet<string> | undefined): { tools: T[]; skipped: T[] } {
  const needs = (t: T) => (t.credentials ?? []).length > 0;
  if (!providers) return { tools: tools.filter((t) => !needs(t)), skipped: tools.filter(needs) };
  const problems = tools.flatMap((t) =>
    (t.credentials ?? []).filter((p) => !providers.has(p)).map((p) => `  tool ${t.name}: credentials names "${p}", which CONNECTIONS_FILE does not configure (configured: ${[...providers].join(', ') || 'none'})`),
  );
  if (problems.length) throw new TypeError(`Tools need providers that are not configured:\n${problems.join('\n')}`);
  return { tools: [...tools], skipped: [] };
}
