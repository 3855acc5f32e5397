import { describe, expect, it } from 'vitest';
import { Metrics, type ProviderCall, type SignInAttemptOutcome, type SignInMethod } from '../../src/metrics/metrics.js';
import { sample } from '../support/metricSamples.js';

/**
 * The label sets of the issue 30 metrics are fixed (alert rules and the
 * dashboard are written against them): a value outside a set is counted as
 * "other", so a hostile request or a bad caller can neither grow a series set
 * nor put a value it chose into one.
 */
describe('Metrics: bounded labels', () => {
  // Values that must never become a label: what a client or a person controls.
  const SUB = 'sub-7f3c2a91-secret-person';
  const CLIENT_ID = 'client-id-5be0d4-secret';
  const TOKEN = 'ory_at_TOKEN-e81c77-secret';

  it.each([
    ['a grant type we do not serve', 'urn:ietf:params:oauth:grant-type:device_code', 'invalid_grant', { grant_type: 'other', outcome: 'invalid_grant' }],
    ['no grant type (the limiter answered before parsing)', undefined, 'rate_limited', { grant_type: 'other', outcome: 'rate_limited' }],
    ['an error code Hydra made up', 'refresh_token', 'request_forbidden', { grant_type: 'refresh_token', outcome: 'other' }],
    ['a token as the grant type', TOKEN, 'ok', { grant_type: 'other', outcome: 'ok' }],
  ])('oauth_token_requests_total: %s', async (_case, grant, outcome, labels) => {
    const m = new Metrics();
    m.tokenRequest(grant, outcome);
    expect(await sample(m, 'oauth_token_requests_total', labels)).toBe(1);
  });

  it('every new metric, fed values a client or person chose, renders none of them', async () => {
    const m = new Metrics();
    m.providersAre(['acme']);
    for (const hostile of [SUB, CLIENT_ID, TOKEN]) {
      m.verification(hostile as 'jwt', hostile as 'ok', true, 0.01);
      m.tokenRequest(hostile, hostile);
      m.signInAttempt(hostile as SignInMethod, hostile as SignInAttemptOutcome);
      m.credentialDuration(hostile, hostile as 'ok', 0.2);
      m.providerRequest(hostile, hostile as ProviderCall, hostile as 'ok');
      m.databaseError(hostile as 'sqlite');
      m.toolCall('notes_list', hostile as 'ok', 0.1);
    }
    m.readinessGauges(async () => ({ dependencies: { [SUB]: true } as never, ready: true }));
    const text = await m.registry.metrics();
    for (const secret of [SUB, CLIENT_ID, TOKEN]) expect(text).not.toContain(secret);
    expect(await sample(m, 'signin_attempts_total', { method: 'other', outcome: 'other' })).toBe(3);
    expect(await sample(m, 'provider_requests_total', { provider: 'other', call: 'other', outcome: 'other' })).toBe(3);
    expect(await sample(m, 'database_errors_total', { dialect: 'other' })).toBe(3);
  });

  it('a configured provider name is kept as it is; any other is "other"', async () => {
    const m = new Metrics();
    m.providersAre(['acme-mail_2']);
    m.providerRequest('acme-mail_2', 'refresh', 'ok');
    m.providerRequest('acme-mail_3', 'refresh', 'ok');
    expect(await sample(m, 'provider_requests_total', { provider: 'other', call: 'refresh', outcome: 'ok' })).toBe(1);
    m.credentialDuration('acme-mail_2', 'refreshed', 0.3);
    expect(await sample(m, 'provider_requests_total', { provider: 'acme-mail_2', call: 'refresh', outcome: 'ok' })).toBe(1);
    expect(await sample(m, 'connected_account_credential_duration_seconds_count', { provider: 'acme-mail_2', outcome: 'refreshed' })).toBe(1);
  });
});

describe('Metrics: gauges read at scrape time', () => {
  it('dependency_up and ready share one readiness run per scrape', async () => {
    const m = new Metrics();
    let runs = 0;
    m.readinessGauges(async () => {
      runs++;
      return { dependencies: { database: true, hydra_admin: false, kratos: false }, ready: false };
    });
    await m.registry.metrics();
    expect(runs).toBe(1);
    expect(await sample(m, 'dependency_up', { dependency: 'database' })).toBe(1);
    expect(await sample(m, 'dependency_up', { dependency: 'hydra_admin' })).toBe(0);
    expect(await sample(m, 'dependency_up', { dependency: 'kratos' })).toBe(0);
    expect(await sample(m, 'ready')).toBe(0);
  });

  it('public_url_certificate_expiry_timestamp_seconds is left out of the scrape while unknown (an unset gauge would read 0: "expired in 1970")', async () => {
    const m = new Metrics();
    let notAfter: number | undefined;
    m.certificateExpiryGauge(async () => notAfter);
    expect(await m.registry.metrics()).not.toMatch(/^public_url_certificate_expiry_timestamp_seconds /m);
    notAfter = 1_900_000_000;
    expect(await m.registry.metrics()).toMatch(/^public_url_certificate_expiry_timestamp_seconds 1900000000$/m);
  });
});
