import { CompactEncrypt, compactDecrypt, decodeProtectedHeader, errors } from 'jose';
import { z } from 'zod';

/**
 * Credentials a person granted us at another service, as we keep them. Only
 * ever stored sealed (see createSealer); the refresh token never leaves the
 * connections code.
 */
export interface StoredCredential {
  accessToken: string;
  refreshToken?: string;
  /** When the access token expires, seconds since the epoch. */
  expiresAt?: number;
  scope?: string;
  tokenType?: string;
  /** When we obtained this access token, seconds since the epoch (so refresh can start at a share of its lifetime). */
  issuedAt?: number;
}

/** One encryption key from CONNECTION_KEYS. */
export interface ConnectionKey {
  /** Short name written into every ciphertext (the JWE `kid`), so the right key is found on reading. */
  kid: string;
  /** 32 random bytes (AES-256). */
  key: Uint8Array;
}

/** Which row a ciphertext belongs to: sealed into it, checked on opening. */
export interface SealBinding {
  sub: string;
  provider: string;
}

/**
 * Seals and opens credentials. Ciphertexts are JWE compact serialisations
 * (`alg: dir`, `enc: A256GCM`): the protected header carries `kid`, `sub`
 * and `prv` (provider) and is authenticated as GCM's additional data, so a
 * ciphertext copied to another person's or provider's row does not open.
 */
export interface CredentialSealer {
  /** Key id every new ciphertext is sealed with (the first of CONNECTION_KEYS). */
  readonly newestKeyId: string;
  seal(secret: StoredCredential, bind: SealBinding): Promise<string>;
  /** Throws SealError when the ciphertext was altered, its key is not configured, or it belongs to another row. */
  open(sealed: string, bind: SealBinding): Promise<StoredCredential>;
  /** The key id a ciphertext names, without opening it (re-encryption picks rows by it). */
  keyIdOf(sealed: string): string;
}

export type SealErrorReason = 'tampered' | 'unknown_key' | 'wrong_binding';

/**
 * A ciphertext that cannot be opened. The message names the key id and row,
 * never key material or plaintext.
 */
export class SealError extends Error {
  override name = 'SealError';
  constructor(
    /**
     * tampered: not a ciphertext of ours, or altered, or sealed with other key
     * bytes under the same id (AES-GCM cannot tell these apart);
     * unknown_key: sealed with a key id not in CONNECTION_KEYS;
     * wrong_binding: authentic, but sealed for another sub or provider.
     */
    readonly reason: SealErrorReason,
    message: string,
  ) {
    super(message);
  }
}

const VAR = 'CONNECTION_KEYS';
const KID = /^[A-Za-z0-9_-]{1,32}$/;
const BASE64URL = /^[A-Za-z0-9_-]+$/;
const KEY_HINT = `generate one with: node -e "console.log(require('node:crypto').randomBytes(32).toString('base64url'))"`;

/**
 * Parse CONNECTION_KEYS: comma-separated `<key id>:<32 bytes, base64url>`,
 * newest first. The first key seals; every key opens, so a rotation prepends
 * a new key, runs `npm run connections -- reencrypt`, and only then drops the
 * old one. Throws a TypeError naming the variable and the entry (by position
 * and id; key bytes are never echoed).
 */
export function parseConnectionKeys(value: string): ConnectionKey[] {
  const entries = value.split(',').map((s) => s.trim());
  if (entries.length === 1 && entries[0] === '') {
    throw new TypeError(`${VAR}: must list at least one key as "<key id>:<32 bytes base64url>" (${KEY_HINT})`);
  }
  const keys: ConnectionKey[] = [];
  for (const [i, entry] of entries.entries()) {
    const where = `${VAR}: entry ${i + 1}`;
    if (!entry) throw new TypeError(`${where} is empty (a stray comma?)`);
    const colon = entry.indexOf(':');
    if (colon < 0) throw new TypeError(`${where}: expected "<key id>:<32 bytes base64url>", found no ":"`);
    const kid = entry.slice(0, colon);
    const encoded = entry.slice(colon + 1);
    if (!KID.test(kid)) throw new TypeError(`${where}: key id ${JSON.stringify(kid)} must be 1 to 32 characters of A-Z a-z 0-9 _ -`);
    // Buffer's decoder skips characters outside the alphabet; check first so a typo is not silently dropped.
    if (!BASE64URL.test(encoded)) throw new TypeError(`${where} ("${kid}"): the key must be base64url (A-Z a-z 0-9 - _, no padding) (${KEY_HINT})`);
    const key = Buffer.from(encoded, 'base64url');
    if (key.length !== 32) throw new TypeError(`${where} ("${kid}"): the key must be 32 bytes, found ${key.length} (${KEY_HINT})`);
    if (keys.some((k) => k.kid === kid)) throw new TypeError(`${where}: key id "${kid}" appears twice`);
    keys.push({ kid, key: new Uint8Array(key) });
  }
  return keys;
}

const Credential = z.object({
  accessToken: z.string().min(1),
  refreshToken: z.string().min(1).optional(),
  expiresAt: z.number().optional(),
  scope: z.string().optional(),
  tokenType: z.string().optional(),
  issuedAt: z.number().optional(),
});

const encoder = new TextEncoder();
const decoder = new TextDecoder();

function checkBinding(bind: SealBinding, op: string): void {
  if (!bind.sub || !bind.provider) throw new TypeError(`${op}: sub and provider must be non-empty strings`);
}

/** A sealer over `keys` (newest first, as parseConnectionKeys returns them). */
export function createSealer(keys: readonly ConnectionKey[]): CredentialSealer {
  const newest = keys[0];
  if (!newest) throw new TypeError('createSealer: at least one key is needed');
  const byKid = new Map<string, Uint8Array>();
  for (const { kid, key } of keys) {
    if (byKid.has(kid)) throw new TypeError(`createSealer: key id "${kid}" appears twice`);
    if (key.length !== 32) throw new TypeError(`createSealer: key "${kid}" must be 32 bytes`);
    byKid.set(kid, key);
  }

  const headerOf = (sealed: string) => {
    // Five parts: header, (empty) encrypted key, IV, ciphertext, tag.
    if (typeof sealed !== 'string' || sealed.split('.').length !== 5) throw new SealError('tampered', 'not a JWE compact serialisation');
    try {
      return decodeProtectedHeader(sealed);
    } catch (e) {
      throw new SealError('tampered', `unreadable protected header (${(e as Error).message})`);
    }
  };

  return {
    newestKeyId: newest.kid,

    async seal(secret, bind) {
      checkBinding(bind, 'seal');
      const plaintext = encoder.encode(JSON.stringify(Credential.parse(secret)));
      return new CompactEncrypt(plaintext)
        .setProtectedHeader({ alg: 'dir', enc: 'A256GCM', kid: newest.kid, sub: bind.sub, prv: bind.provider })
        .encrypt(newest.key);
    },

    async open(sealed, bind) {
      checkBinding(bind, 'open');
      const header = headerOf(sealed);
      const key = typeof header.kid === 'string' ? byKid.get(header.kid) : undefined;
      if (!key) throw new SealError('unknown_key', `sealed with key ${JSON.stringify(header.kid ?? null)}, which is not in ${VAR}`);
      let plaintext: Uint8Array;
      let protectedHeader: Record<string, unknown>;
      try {
        ({ plaintext, protectedHeader } = await compactDecrypt(sealed, key, {
          keyManagementAlgorithms: ['dir'],
          contentEncryptionAlgorithms: ['A256GCM'],
        }));
      } catch (e) {
        if (e instanceof errors.JOSEError) throw new SealError('tampered', `does not decrypt with key "${header.kid}" (${e.code})`);
        throw e;
      }
      // Compared only after decryption: the header is then known to be the one sealed.
      if (protectedHeader.sub !== bind.sub || protectedHeader.prv !== bind.provider) {
        throw new SealError('wrong_binding', `sealed for another connection, not ${bind.provider} of this subject`);
      }
      let json: unknown;
      try {
        json = JSON.parse(decoder.decode(plaintext));
      } catch {
        json = undefined;
      }
      const parsed = Credential.safeParse(json);
      if (!parsed.success) throw new SealError('tampered', 'decrypted, but not a stored credential');
      return parsed.data;
    },

    keyIdOf(sealed) {
      const { kid } = headerOf(sealed);
      if (typeof kid !== 'string' || !kid) throw new SealError('tampered', 'no key id in the protected header');
      return kid;
    },
  };
}
