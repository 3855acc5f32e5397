import { createHash } from 'node:crypto';
import { createLocalJWKSet, errors, type JSONWebKeySet, jwtVerify } from 'jose';
import { InvalidClientError } from '../oauthErrors.js';
import { CLIENT_ASSERTION_ALGS, type ClientMetadata } from './clientMetadataDocument.js';

/** RFC 7523 §2.2: the only client assertion type. */
export const JWT_BEARER_ASSERTION = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';

/** Remembers assertion ids until they expire, for every replica (src/store/singleUseIds.ts). */
export interface ReplayGuard {
  /** True on the first use of `id` (at most 256 characters), false on any later one; kept until `expiresAt` (epoch ms). */
  use(id: string, expiresAt: number): Promise<boolean>;
}

export interface ClientAssertionOptions {
  /** The audiences an assertion may name: our token endpoint and our issuer (RFC 7523 §3 item 3). */
  audiences: readonly string[];
  replays: ReplayGuard;
  /** The key set of a document's jwks_uri, fetched safely (documentKeys.ts). */
  keysAt(url: string, opts: { refresh: boolean }): Promise<JSONWebKeySet>;
  now?: () => number;
}

/** The longest an assertion may live: each one's id is kept until it expires. */
const MAX_LIFETIME_S = 3600;
const CLOCK_TOLERANCE_S = 30;

/**
 * Checks an RFC 7523 client assertion (private_key_jwt) against the current
 * client metadata document, so a key the document drops stops working when
 * the document is next read: the assertion is verified here, not by Hydra,
 * whose copy of the client authenticates only with our secret (cimdClients.ts).
 * jose does the JWS and claim checks; what is left here are RFC 7523 §3's
 * rules jose cannot know: iss = sub = client_id, our audiences, one use.
 */
export function clientAssertionVerifier(options: ClientAssertionOptions) {
  const now = options.now ?? Date.now;
  return async function verifyClientAssertion(doc: ClientMetadata, assertion: string): Promise<void> {
    const algorithms = doc.token_endpoint_auth_signing_alg ? [doc.token_endpoint_auth_signing_alg] : [...CLIENT_ASSERTION_ALGS];
    const verify = async (refresh: boolean) => {
      const keys = doc.jwks ? (doc.jwks as JSONWebKeySet) : await options.keysAt(doc.jwks_uri!, { refresh });
      return jwtVerify(assertion, createLocalJWKSet(keys), {
        algorithms,
        issuer: doc.client_id,
        subject: doc.client_id,
        audience: [...options.audiences],
        requiredClaims: ['exp', 'jti'],
        clockTolerance: CLOCK_TOLERANCE_S,
        currentDate: new Date(now()),
      });
    };
    let payload;
    try {
      try {
        payload = (await verify(false)).payload;
      } catch (e) {
        // A key rotated in at the jwks_uri since we last read it: read it again, once.
        if (!(e instanceof errors.JWKSNoMatchingKey) || !doc.jwks_uri) throw e;
        payload = (await verify(true)).payload;
      }
    } catch (e) {
      throw new InvalidClientError(`Client authentication failed: ${reason(e, doc)}`);
    }
    const exp = payload.exp!;
    if (exp - now() / 1000 > MAX_LIFETIME_S) {
      throw new InvalidClientError(`Client authentication failed: the client assertion's exp is more than ${MAX_LIFETIME_S} seconds away`);
    }
    if (typeof payload.jti !== 'string' || payload.jti.length > 256) throw new InvalidClientError('Client authentication failed: the client assertion\'s jti must be a string of at most 256 characters');
    // RFC 7523 §3 item 7: the authorization server may refuse a jti it has seen.
    const id = `client-assertion:${createHash('sha256').update(JSON.stringify([doc.client_id, payload.jti])).digest('base64url')}`;
    if (!(await options.replays.use(id, Math.ceil(exp + CLOCK_TOLERANCE_S) * 1000))) {
      throw new InvalidClientError('Client authentication failed: this client assertion (jti) was already used');
    }
  };
}

export type VerifyClientAssertion = ReturnType<typeof clientAssertionVerifier>;

/** A refusal worded for the client: which rule the assertion broke. */
function reason(e: unknown, doc: ClientMetadata): string {
  if (e instanceof errors.JWTExpired) return 'the client assertion has expired';
  if (e instanceof errors.JWTClaimValidationFailed) {
    if (e.claim === 'aud') return 'the client assertion\'s aud must be this server\'s token endpoint or issuer';
    if (e.claim === 'iss' || e.claim === 'sub') return `the client assertion's ${e.claim} must be the client_id ${doc.client_id}`;
    return `the client assertion's ${e.claim} claim ${e.reason === 'missing' ? 'is missing' : 'is not valid'}`;
  }
  if (e instanceof errors.JOSEAlgNotAllowed) return `the client assertion must be signed with ${doc.token_endpoint_auth_signing_alg ?? CLIENT_ASSERTION_ALGS.join(', ')}`;
  if (e instanceof errors.JWKSNoMatchingKey) return 'no key of the client\'s metadata document matches the client assertion';
  if (e instanceof errors.JWSSignatureVerificationFailed) return 'the client assertion\'s signature does not verify with the client\'s keys';
  if (e instanceof errors.JWKSMultipleMatchingKeys) return 'several keys of the client\'s metadata document match; name one with kid';
  if (e instanceof InvalidClientError) return e.message;
  if (e instanceof errors.JOSEError) return 'the client assertion is not a valid signed JWT';
  throw e;
}
