import { describe, expect, it } from 'vitest';
import { OAuthClientInformationFullSchema } from '@modelcontextprotocol/sdk/shared/auth.js';
import { toClientInformation } from '../../src/auth/hydraClients.js';

describe('toClientInformation (Hydra registration response normalised)', () => {
  // Shape of Hydra v2.3.0's answer to POST /oauth2/register for a public client.
  const hydra = {
    client_id: '4f5c7d1e-0000-4000-8000-000000000001',
    client_name: 'Inspector',
    client_secret_expires_at: 0,
    client_uri: '',
    contacts: null,
    created_at: '2026-11-22T10:00:00Z',
    grant_types: ['authorization_code', 'refresh_token'],
    logo_uri: '',
    metadata: {},
    owner: '',
    policy_uri: '',
    redirect_uris: ['http://127.0.0.1:6274/oauth/callback'],
    registration_access_token: 'ory_at_secret',
    registration_client_uri: 'http://127.0.0.1:4444/oauth2/register/4f5c',
    response_types: ['code'],
    scope: 'openid offline_access',
    skip_consent: false,
    token_endpoint_auth_method: 'none',
    tos_uri: '',
  };

  it('drops nulls, empty strings and Hydra-only fields so the SDK schema accepts it', () => {
    const info = toClientInformation(hydra as never);
    expect(Object.values(info).filter((v) => v === null || v === '')).toEqual([]);
    expect(info).not.toHaveProperty('registration_access_token');
    expect(info).not.toHaveProperty('skip_consent');
    expect(info.client_id_issued_at).toBe(Date.parse('2026-11-22T10:00:00Z') / 1000);
    expect(OAuthClientInformationFullSchema.safeParse(info).success).toBe(true);
  });
});
