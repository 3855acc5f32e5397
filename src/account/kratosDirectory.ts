import type { AccountDirectory } from './accountRemoval.js';
import { normaliseEmail, type User } from './userStore.js';
import type { KratosAdmin } from '../kratos/admin.js';
import { KratosError } from '../kratos/errors.js';
import type { Identity } from '../kratos/models.js';

/** A Kratos identity as an account (email trait, id = sub). */
export function identityAsUser(i: Identity): User {
  return { id: i.id, email: typeof i.traits.email === 'string' ? i.traits.email : '', createdAt: i.created_at ?? '' };
}

/** The identity whose password identifier is this email (normalised first; Kratos matches it exactly). */
export async function findIdentityByEmail(kratos: KratosAdmin, email: string): Promise<Identity | undefined> {
  const { identities } = await kratos.listIdentities({ identifier: normaliseEmail(email), pageSize: 1 });
  return identities[0];
}

/** The identity with this id; Kratos answers 400 for an id that is not a UUID: no such identity either way. */
export async function findIdentityById(kratos: KratosAdmin, id: string): Promise<Identity | undefined> {
  return kratos.getIdentity(id).catch((e: unknown) => {
    if (e instanceof KratosError && e.status === 400) return undefined;
    throw e;
  });
}

/** Kratos's identities as the account directory of a removal (IDENTITY=kratos): found by email or id, deleted last. */
export function kratosAccountDirectory(kratos: KratosAdmin): AccountDirectory {
  return {
    findByEmail: async (email) => {
      const i = await findIdentityByEmail(kratos, email);
      return i && identityAsUser(i);
    },
    findById: async (id) => {
      const i = await findIdentityById(kratos, id);
      return i && identityAsUser(i);
    },
    removeById: (id) => kratos.deleteIdentity(id),
  };
}
