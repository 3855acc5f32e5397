import express from 'express';
import type { RemoveAccount } from '../account/accountRemoval.js';
import type { IdentitySweep } from '../account/identitySweep.js';
import { mountRoutes } from './routes.js';
import { type AppDependencies, buildServices } from './services.js';

export interface App {
  app: express.Express;
  /** Waits until no request and no tool call is in flight on any transport, or the deadline passes (false). */
  drain(deadlineMs: number): Promise<boolean>;
  /** Requests and tool calls in flight now. */
  inFlight(): number;
  /** Ends every live MCP session and its event stream, and the background sweeps (for shutdown). */
  closeSessions(): Promise<void>;
  /** IDENTITY=kratos: the sweep that ends the access of identities deleted in Kratos (tests run it at will). */
  identitySweep?: IdentitySweep;
  /** Remove an account in this process: its tokens are refused and its open sessions closed at once (src/account/). */
  removeAccount: RemoveAccount;
}

/**
 * Build the HTTP application from explicit dependencies: the services once
 * (./services.ts), then the routes in the order a request meets them
 * (./routes.ts). Nothing here reads the environment.
 */
export function buildApp(deps: AppDependencies): App {
  const services = buildServices(deps);
  const app = express();
  mountRoutes(app, services, deps);
  const { inFlight, httpSessions, sseSessions } = services.mcp;
  const { identitySweep, removeAccount } = services.identity;
  return {
    app,
    drain: (deadlineMs) => inFlight.drained(deadlineMs),
    inFlight: () => inFlight.size,
    closeSessions: async () => {
      services.cimdSweep.stop();
      await Promise.all([httpSessions.closeAll(), sseSessions.closeAll(), identitySweep?.stop()]);
    },
    removeAccount,
    ...(identitySweep ? { identitySweep } : {}),
  };
}
