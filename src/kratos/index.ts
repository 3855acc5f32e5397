/**
 * Ory Kratos, the one room this server talks to it from (as src/hydra/ is Hydra's).
 *
 * - `endpoints.ts`: every Kratos path and URL (nothing outside src/kratos/ spells one).
 * - `transport.ts`: the injected `fetch` and the one timeout (KRATOS_TIMEOUT_MS).
 * - `errors.ts`: KratosError, the one error type (status 0 = unreachable or timed out).
 * - `public.ts`: whoami, self-service flows and errors, on behalf of a browser.
 * - `admin.ts`: identities (never exposed).
 * - `models.ts`: Kratos's JSON, as far as we read or send it.
 */
import { kratosAdminClient, type KratosAdmin } from './admin.js';
import { kratosPublicClient, type KratosPublic } from './public.js';
import { createKratosTransport, type KratosTransportOptions } from './transport.js';

export type { KratosAdmin } from './admin.js';
export { KratosError } from './errors.js';
export type * from './models.js';
export type { BrowserFlowKind, KratosPublic } from './public.js';
export { KRATOS_TIMEOUT_MS } from './transport.js';

export interface KratosOptions extends KratosTransportOptions {
  /** Kratos's public API, as browsers reach it (our server calls it there too). */
  publicUrl: URL;
  /** Kratos's admin API (never exposed). */
  adminUrl: URL;
}

export interface Kratos {
  public: KratosPublic;
  admin: KratosAdmin;
}

/** Both halves of Kratos over one transport: one fetch, one timeout. */
export function createKratos(options: KratosOptions): Kratos {
  const transport = createKratosTransport(options);
  return {
    public: kratosPublicClient({ publicUrl: options.publicUrl, transport }),
    admin: kratosAdminClient({ adminUrl: options.adminUrl, transport }),
  };
}
