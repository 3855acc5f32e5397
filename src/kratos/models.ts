/** Kratos's JSON (v1.3.1), as far as we read or send it. */

/** A message Kratos shows a person: stable `id`, its own English `text`. */
export interface UiText {
  id: number;
  text: string;
  type: 'error' | 'info' | 'success' | string;
}

/** One element of a flow's form: an input, a text, a link, an image or a script (by `type`). */
export interface UiNode {
  type: 'input' | 'text' | 'a' | 'img' | 'script' | string;
  group: string;
  attributes: {
    name?: string;
    type?: string;
    value?: unknown;
    required?: boolean;
    disabled?: boolean;
    autocomplete?: string;
    pattern?: string;
    /** `a` nodes. */
    href?: string;
    title?: UiText;
    /** `text` nodes. */
    text?: UiText;
    id?: string;
  };
  messages: UiText[];
  meta: { label?: UiText };
}

/** A self-service flow (login, registration, …): what its page renders and where the form goes. */
export interface SelfServiceFlow {
  id: string;
  type: 'browser' | 'api';
  expires_at?: string;
  return_to?: string;
  ui: {
    /** Where the browser posts the form: Kratos's public URL. */
    action: string;
    method: string;
    nodes: UiNode[];
    messages?: UiText[];
  };
}

export interface Identity {
  id: string;
  schema_id: string;
  state?: 'active' | 'inactive';
  traits: { email?: string; name?: string } & Record<string, unknown>;
  created_at?: string;
  /** Admin API only: never shown to the person (metadata_public would be). */
  metadata_admin?: Record<string, unknown> | null;
  metadata_public?: Record<string, unknown> | null;
}

export interface Session {
  id: string;
  active: boolean;
  expires_at?: string;
  authenticated_at?: string;
  identity: Identity;
}

/** An error Kratos stored for its error page (`/kratos/error?id=`). */
export interface ErrorContainer {
  id: string;
  error: { code?: number; status?: string; message?: string; reason?: string; id?: string };
  created_at?: string;
}

/** What creating an identity takes (POST /admin/identities). */
export interface CreateIdentity {
  schema_id?: string;
  traits: Record<string, unknown>;
  state?: 'active' | 'inactive';
  /** A plain password (Kratos hashes it) or an imported hash (`hashed_password`, PHC format). */
  credentials?: { password?: { config: { password?: string; hashed_password?: string } } };
  /** Admin-only metadata (src/account/migrateUsers.ts records the built-in sub an identity was moved from). */
  metadata_admin?: Record<string, unknown>;
}

/** What replacing an identity takes (PUT /admin/identities/{id}): the whole identity; credentials optional. */
export interface UpdateIdentity {
  schema_id: string;
  traits: Record<string, unknown>;
  state: 'active' | 'inactive';
  metadata_public?: Record<string, unknown> | null;
  metadata_admin?: Record<string, unknown> | null;
  credentials?: { password?: { config: { password?: string; hashed_password?: string } } };
}
