/**
 * Machine clients: OAuth clients an operator made (`npm run client -- add
 * --machine`) so an agent can call tools with no person present, through the
 * client-credentials grant (MCP extension io.modelcontextprotocol/
 * oauth-client-credentials: "pre-registered client credentials ... established
 * out-of-band through administrative channels. Dynamic Client Registration is
 * not used in this flow").
 *
 * A client-credentials token names its client as `sub`. Anyone can register a
 * client at Hydra's public registration endpoint and ask it for that grant, so
 * `sub === client_id` alone proves nothing; what proves an operator made the
 * client is Hydra's client `metadata`, which dynamic registration may not set
 * (Hydra v2.3 client/validator.go ValidateDynamicRegistration: `"metadata"
 * cannot be set for dynamic client registration`).
 */
import { type HydraAdmin, type HydraClient, HydraError } from '../hydra/index.js';
import type { Logger } from '../log/logger.js';
import { LruCache } from '../lib/lruCache.js';
import { InvalidTokenError, ServerError, TemporarilyUnavailableError } from './oauthErrors.js';
import type { PrincipalKind } from './principal.js';

/** The Hydra client `metadata` that marks an operator-made machine client. */
export const MACHINE_METADATA = { machine: true } as const;
/** Hydra client `owner` of machine clients: lets the CLI list them without reading every client. */
export const MACHINE_OWNER = 'hydra-mcp:machine';

/** True for a client an operator made for machine use: `metadata.machine === true` and the client-credentials grant. */
export function isMachineClient(client: Pick<HydraClient, 'metadata' | 'grant_types'>): boolean {
  return client.metadata?.machine === true && (client.grant_types ?? []).includes('client_credentials');
}

export interface MachineClientsOptions {
  hydraAdmin: Pick<HydraAdmin, 'getClient'>;
  log: Logger;
  /** How long a client found to be a machine client is believed, in ms (default 60 s): a removed one stops within it. */
  cacheTtlMs?: number;
  /** How long "not a machine client" (or "no such client") is remembered, in ms (default 10 s): a flood of one bad token costs one lookup. */
  negativeTtlMs?: number;
  /** Most answers kept (default 1000). */
  cacheSize?: number;
}

/**
 * Decides a verified token's principal kind. A token whose `sub` is not its
 * client id was granted by a person; one whose `sub` is its client id is a
 * machine only if that client is an operator-made machine client, and is
 * refused otherwise. Answers are cached per client id (bounded, TTL), and
 * concurrent lookups of one client share one request to Hydra, so the check on
 * every call is one string comparison for people and one cache read for
 * machines.
 */
export class MachineClients {
  private readonly cache: LruCache<boolean>;
  private readonly inflight = new Map<string, Promise<boolean>>();
  private readonly ttlMs: number;
  private readonly negativeTtlMs: number;

  constructor(private readonly options: MachineClientsOptions) {
    this.ttlMs = options.cacheTtlMs ?? 60_000;
    this.negativeTtlMs = options.negativeTtlMs ?? 10_000;
    for (const [name, value] of [['cacheTtlMs', this.ttlMs], ['negativeTtlMs', this.negativeTtlMs]] as const) {
      if (!Number.isFinite(value) || value < 0) throw new TypeError(`MachineClients: ${name} must be a number of milliseconds, 0 or more`);
    }
    this.cache = new LruCache(options.cacheSize ?? 1000);
  }

  /**
   * The kind of a verified token's principal: `person` when `sub` is not the
   * client id (synchronously), `machine` for an operator-made machine client.
   * Throws InvalidTokenError (401) for a client-credentials token of any other
   * client, TemporarilyUnavailableError (503) when Hydra cannot be asked.
   */
  kindOf(principal: { sub: string; clientId: string }): PrincipalKind | Promise<PrincipalKind> {
    if (principal.sub !== principal.clientId) return 'person';
    const known = this.cache.get(principal.clientId);
    if (known !== undefined) return judge(known);
    return this.lookup(principal.clientId).then(judge);
  }

  /** Forget what is known of a client (after the CLI changes or removes it in this process). */
  forget(clientId: string): void {
    this.cache.delete(clientId);
  }

  private lookup(clientId: string): Promise<boolean> {
    let pending = this.inflight.get(clientId);
    if (!pending) {
      pending = this.ask(clientId).finally(() => this.inflight.delete(clientId));
      this.inflight.set(clientId, pending);
    }
    return pending;
  }

  private async ask(clientId: string): Promise<boolean> {
    let client: HydraClient | undefined;
    try {
      client = await this.options.hydraAdmin.getClient(clientId);
    } catch (e) {
      this.options.log.error('machine client lookup failed', { client_id: clientId, error: e });
      throw e instanceof HydraError && e.unavailable
        ? new TemporarilyUnavailableError('The authorization server is unavailable; try again')
        : new ServerError('The client of this token could not be looked up');
    }
    const machine = client !== undefined && isMachineClient(client);
    if (!machine) this.options.log.warn('client-credentials token of a client that is not a machine client', { client_id: clientId, found: client !== undefined });
    this.cache.set(clientId, machine, machine ? this.ttlMs : this.negativeTtlMs);
    return machine;
  }
}

function judge(machine: boolean): PrincipalKind {
  if (machine) return 'machine';
  throw new InvalidTokenError(
    'This token was issued to a client for itself (client credentials), and that client is not a machine client of this server; ' +
      'machine clients are made by an operator (npm run client -- add --machine)',
  );
}
