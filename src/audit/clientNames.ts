import { LruCache } from '../lib/lruCache.js';
import type { HydraAdmin } from '../hydra/index.js';

export interface ClientNamesOptions {
  hydraAdmin: Pick<HydraAdmin, 'getClient'>;
  /** How long a name is reused, ms. Default 60 s (as MachineClients caches client metadata). */
  ttlMs?: number;
  /** Most client ids remembered. Default 1000. */
  size?: number;
}

/**
 * Hydra client names for audit records, cached (bounded, TTL) so a batch of
 * records costs at most one Hydra call per new client, and concurrent asks
 * share one call. A failed lookup answers undefined and is not cached.
 */
export class ClientNames {
  private readonly cache: LruCache<string | null>;
  private readonly pending = new Map<string, Promise<string | undefined>>();
  private readonly ttlMs: number;

  constructor(private readonly options: ClientNamesOptions) {
    this.ttlMs = options.ttlMs ?? 60_000;
    this.cache = new LruCache(options.size ?? 1000);
  }

  async nameOf(clientId: string): Promise<string | undefined> {
    const known = this.cache.get(clientId);
    if (known !== undefined) return known ?? undefined;
    let p = this.pending.get(clientId);
    if (!p) {
      p = this.ask(clientId).finally(() => this.pending.delete(clientId));
      this.pending.set(clientId, p);
    }
    return p;
  }

  private async ask(clientId: string): Promise<string | undefined> {
    try {
      const client = await this.options.hydraAdmin.getClient(clientId);
      const name = client?.client_name || null;
      this.cache.set(clientId, name, this.ttlMs);
      return name ?? undefined;
    } catch {
      return undefined;
    }
  }
}
