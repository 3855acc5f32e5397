import express from 'express';
import { z } from 'zod';
import { type BrowserFlowKind, type Kratos, KratosError, type SelfServiceFlow } from '../../kratos/index.js';
import { kratosFlowPage, kratosSettingsPage } from '../kratosPages.js';
import { BadRequest, parse, send } from '../../web/pageKit.js';
import { errorPage } from '../../web/layout.js';
import type { PageContext } from './context.js';

export interface KratosFlowsOptions {
  kratos: Kratos;
  /** Kratos's public URL as browsers reach it: a flow's form must post there and nowhere else. */
  kratosPublicUrl: URL;
}

// Kratos's ids are UUIDs; bound what reaches Kratos.
const FlowQuery = z.object({ flow: z.string().min(1).max(128).optional() });
const ErrorQuery = z.object({ id: z.string().min(1).max(128) });
const OTHER = { login: 'registration', registration: 'login' } as const;
/** Kratos's message for a wrong identifier or password (text id ErrorValidationInvalidCredentials). */
const INVALID_CREDENTIALS = 4000006;

/**
 * A login flow Kratos sent back with errors: its form was posted to Kratos and
 * refused, and this page is the only sign of it we get. Undefined for a flow
 * without errors (a fresh form, not an attempt). A reload of the refused page
 * counts again: nothing tells the two apart.
 */
export function refusedAttempt(flow: SelfServiceFlow): 'invalid_credentials' | 'error' | undefined {
  const errors = [...(flow.ui.messages ?? []), ...flow.ui.nodes.flatMap((n) => n.messages)].filter((m) => m.type === 'error');
  if (errors.length === 0) return undefined;
  return errors.some((m) => m.id === INVALID_CREDENTIALS) ? 'invalid_credentials' : 'error';
}

/**
 * The UI pages Kratos sends browsers to (selfservice.flows.*.ui_url in
 * kratos/kratos.yml): /kratos/login and /kratos/registration render a flow,
 * /kratos/error shows an error Kratos stored. The forms post to Kratos itself.
 */
export function kratosFlowsHandler(ctx: PageContext, { kratos, kratosPublicUrl }: KratosFlowsOptions): express.Router {
  const { log, page } = ctx;
  const router = express.Router();

  /** The flow to render, or undefined when the browser was sent to start a fresh one (no id, or it expired). */
  const loadFlow = async (kind: BrowserFlowKind, req: express.Request, res: express.Response): Promise<SelfServiceFlow | undefined> => {
    const { flow: id } = parse(FlowQuery, req.query, 'flow id');
    // No flow yet (a bookmark, a typed address): Kratos starts one and sends the browser back with its id.
    if (!id) {
      res.redirect(303, kratos.public.browserFlowUrl(kind).href);
      return undefined;
    }
    let flow: SelfServiceFlow;
    try {
      flow = await kratos.public.getFlow(kind, id, req.headers.cookie);
    } catch (e) {
      // An expired flow: start a fresh one that returns to the same place (Kratos says where).
      if (e instanceof KratosError && e.status === 410) {
        const returnTo = typeof e.details.return_to === 'string' && e.details.return_to ? e.details.return_to : undefined;
        res.redirect(303, kratos.public.browserFlowUrl(kind, returnTo).href);
        return undefined;
      }
      throw e;
    }
    if (!URL.canParse(flow.ui.action) || new URL(flow.ui.action).origin !== kratosPublicUrl.origin) {
      // The password would be posted elsewhere: Kratos's serve.public.base_url disagrees with KRATOS_PUBLIC_URL.
      log.error('Kratos flow posts outside KRATOS_PUBLIC_URL; check serve.public.base_url', { action: flow.ui.action });
      throw new Error('Kratos flow action outside KRATOS_PUBLIC_URL');
    }
    return flow;
  };

  for (const kind of ['login', 'registration'] as const) {
    router.get(`/kratos/${kind}`, page(async (req, res) => {
      const flow = await loadFlow(kind, req, res);
      if (!flow) return;
      const refused = kind === 'login' ? refusedAttempt(flow) : undefined;
      if (refused) ctx.onSignInAttempt?.('kratos', refused);
      const otherFlowUrl = kratos.public.browserFlowUrl(OTHER[kind], flow.return_to || undefined).href;
      send(res, 200, kratosFlowPage({ kind, flow, otherFlowUrl }));
    }));
  }

  router.get('/kratos/settings', page(async (req, res) => {
    const flow = await loadFlow('settings', req, res);
    if (flow) send(res, 200, kratosSettingsPage({ flow, accountUrl: '/account' }));
  }));

  router.get('/kratos/error', page(async (req, res) => {
    const q = ErrorQuery.safeParse(req.query);
    if (!q.success) throw new BadRequest('The error id is missing or malformed.');
    const { error } = await kratos.public.getError(q.data.id);
    const status = typeof error.code === 'number' && error.code >= 400 && error.code < 600 ? error.code : 500;
    const message = [...new Set([error.message, error.reason].filter((x): x is string => typeof x === 'string' && x !== ''))].join(' ');
    send(res, status, errorPage({ title: 'Sign-in could not continue', message: message || 'The account service reported an error.' }));
  }));

  return router;
}
