import { decodeJwt } from 'jose';
import { InvalidClientError, InvalidGrantError } from '../oauthErrors.js';
import { matchesRegisteredRedirectUri } from '../redirectUris.js';
import type { CimdClients } from './cimdClients.js';
import { JWT_BEARER_ASSERTION, type VerifyClientAssertion } from './clientAssertion.js';
import { type ClientMetadataDocuments, isClientIdUrl } from './clientMetadataDocument.js';

/** A token or revocation request as it goes on to Hydra. */
export interface ForHydra {
  form: URLSearchParams;
  authorization?: string;
  /** The metadata document client it speaks for, when it is one. */
  cimdUrl?: string;
}

export interface CimdTokenAuthOptions {
  cimd: CimdClients;
  documents: ClientMetadataDocuments;
  verifyAssertion: VerifyClientAssertion;
}

/**
 * /token and /revoke for clients identified by a metadata document: the
 * client authenticates to us as its current document says (RFC 7591 §2
 * `token_endpoint_auth_method`: `none`, or `private_key_jwt` per RFC 7523),
 * and the request goes on to Hydra as the mirror, with this server's secret
 * for it (HTTP Basic, RFC 6749 §2.3.1). Requests of other clients pass
 * unchanged: Hydra authenticates them itself.
 */
export function cimdTokenAuth({ cimd, documents, verifyAssertion }: CimdTokenAuthOptions) {
  return async function forHydra(form: URLSearchParams, authorization: string | undefined): Promise<ForHydra> {
    const url = claimedClientUrl(form, authorization);
    if (!url) return authorization === undefined ? { form } : { form, authorization };
    const doc = await documents.resolve(url);
    await cimd.getClient(url);
    const method = doc.token_endpoint_auth_method;
    if (authorization !== undefined || form.has('client_secret')) {
      throw new InvalidClientError(`Client authentication failed: ${url} has no client secret; its metadata document names token_endpoint_auth_method ${method}`);
    }
    const assertion = form.get('client_assertion');
    if (method === 'none' && (assertion !== null || form.has('client_assertion_type'))) {
      throw new InvalidClientError(`Client authentication failed: ${url} authenticates with none (its metadata document), not a client assertion`);
    }
    if (method === 'private_key_jwt') {
      if (assertion === null) throw new InvalidClientError(`Client authentication failed: ${url} must send a client_assertion (private_key_jwt, its metadata document)`);
      if (form.get('client_assertion_type') !== JWT_BEARER_ASSERTION) {
        throw new InvalidClientError(`Client authentication failed: client_assertion_type must be ${JWT_BEARER_ASSERTION}`);
      }
      await verifyAssertion(doc, assertion);
    }
    // RFC 6749 §4.1.3: a code goes only to a redirect URI the client (still) has; the document may have dropped it since.
    const redirectUri = form.get('redirect_uri');
    if (form.get('grant_type') === 'authorization_code' && redirectUri !== null && !doc.redirect_uris.some((r) => matchesRegisteredRedirectUri(redirectUri, r))) {
      throw new InvalidGrantError(`redirect_uri ${redirectUri} is not among the redirect URIs of ${url}'s metadata document`);
    }
    const out = new URLSearchParams(form);
    for (const k of ['client_id', 'client_assertion', 'client_assertion_type']) out.delete(k);
    const { clientId, secret } = cimd.credentialsOf(url);
    // RFC 6749 §2.3.1: both parts form-encoded before the Basic encoding.
    const basic = Buffer.from(`${formEncode(clientId)}:${formEncode(secret)}`).toString('base64');
    return { form: out, authorization: `Basic ${basic}`, cimdUrl: url };
  };
}

export type CimdForHydra = ReturnType<typeof cimdTokenAuth>;

/**
 * The client_id URL a request speaks for: its `client_id`, its assertion's
 * `sub` (RFC 7523 §3: the client id), or the Basic user name. A request whose
 * parts name different clients is refused.
 */
function claimedClientUrl(form: URLSearchParams, authorization: string | undefined): string | undefined {
  const named = new Set<string>();
  const clientId = form.get('client_id');
  if (clientId) named.add(clientId);
  const assertion = form.get('client_assertion');
  if (assertion) {
    let claims;
    try {
      claims = decodeJwt(assertion);
    } catch {
      claims = undefined;
    }
    if (typeof claims?.sub === 'string') named.add(claims.sub);
  }
  const user = basicUser(authorization);
  if (user) named.add(user);
  const urls = [...named].filter(isClientIdUrl);
  if (!urls.length) return undefined;
  if (named.size > 1) throw new InvalidClientError('Client authentication failed: the request names more than one client');
  return urls[0];
}

function basicUser(authorization: string | undefined): string | undefined {
  const m = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(authorization ?? '');
  if (!m) return undefined;
  const decoded = Buffer.from(m[1]!, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0) return undefined;
  try {
    return decodeURIComponent(decoded.slice(0, colon).replace(/\+/g, ' '));
  } catch {
    return undefined;
  }
}

const formEncode = (s: string) => encodeURIComponent(s).replace(/%20/g, '+');
