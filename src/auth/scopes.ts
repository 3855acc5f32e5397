/**
 * The scopes this server knows, with the words a person sees on the consent
 * page. Tools declare which of these they need; the metadata advertises them.
 */
export interface ScopeInfo {
  name: string;
  description: string;
  /** Always granted when asked for; the consent page shows it fixed. */
  required?: boolean;
}

export const SCOPES: readonly ScopeInfo[] = [
  // Every tool's data is keyed by who you are, so identity is not optional.
  { name: 'openid', description: 'Know who you are (your account id)', required: true },
  { name: 'offline_access', description: 'Stay connected without asking you to sign in again' },
  { name: 'notes:read', description: 'Read your notes' },
  { name: 'notes:write', description: 'Create and delete your notes' },
];

/** Scope names advertised in the metadata, in catalogue order. */
export const SUPPORTED_SCOPES: readonly string[] = SCOPES.map((s) => s.name);

/**
 * Hydra issues a refresh token only when `offline` or `offline_access` is
 * granted; both spellings exist in the wild, so both are accepted.
 */
export const OFFLINE_SCOPES: readonly string[] = ['offline_access', 'offline'];

/** Scopes a client may be registered for at Hydra: the catalogue plus Hydra's `offline` alias. */
export const REGISTRABLE_SCOPES: readonly string[] = [...SUPPORTED_SCOPES, 'offline'];

export function describeScope(name: string): string {
  return SCOPES.find((s) => s.name === name)?.description ?? name;
}

export function isRequiredScope(name: string): boolean {
  return SCOPES.some((s) => s.name === name && s.required);
}
