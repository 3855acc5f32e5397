import { describe, expect, it } from 'vitest';
import { createLogger, type LogLevel } from '../../src/log/logger.js';

function capture(level: LogLevel = 'debug') {
  const lines: string[] = [];
  const log = createLogger(level, (line) => lines.push(line));
  const records = () => lines.map((l) => JSON.parse(l) as Record<string, unknown>);
  return { log, lines, records };
}

describe('createLogger (pino underneath)', () => {
  it('writes one JSON object per line: ISO time, level name, fields, msg; no newline, pid or hostname', () => {
    const { log, lines, records } = capture('info');
    log.info('listening', { url: 'http://127.0.0.1:3000', tools: ['whoami'] });
    expect(lines).toHaveLength(1);
    expect(lines[0]!.endsWith('\n')).toBe(false);
    const [r] = records();
    expect(r).toEqual({ time: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/), level: 'info', msg: 'listening', url: 'http://127.0.0.1:3000', tools: ['whoami'] });
  });

  it.each([
    ['debug', ['debug', 'info', 'warn', 'error']],
    ['info', ['info', 'warn', 'error']],
    ['warn', ['warn', 'error']],
    ['error', ['error']],
    ['silent', []],
  ] as const)('at LOG_LEVEL=%s writes %j', (level, written) => {
    const { log, records } = capture(level);
    log.debug('d');
    log.info('i');
    log.warn('w');
    log.error('e');
    expect(records().map((r) => r.level)).toEqual(written);
  });

  it('child loggers add their fields to every line', () => {
    const { log, records } = capture();
    log.child({ tool: 'notes_add', sub: 'u1' }).child({ client_id: 'c1' }).info('called', { ok: true });
    expect(records()[0]).toMatchObject({ tool: 'notes_add', sub: 'u1', client_id: 'c1', ok: true, msg: 'called' });
  });
});

describe('redaction by key, at any depth and in any case', () => {
  const SECRET = 'S3CRET-value-that-must-not-appear';
  it.each([
    'authorization',
    'Authorization',
    'cookie',
    'set-cookie',
    'password',
    'new_password',
    'token',
    'access_token',
    'refresh_token',
    'id_token',
    'code',
    'client_secret',
    'login_challenge',
    'consent_challenge',
    'logout_challenge',
    'code_challenge',
    'code_verifier',
    'login_verifier',
    'consent_verifier',
    'github_token',
    'apiKey',
    'api_key',
  ])('%s', (key) => {
    const { log, lines, records } = capture();
    log.info('top', { [key]: SECRET });
    log.info('nested', { request: { headers: { [key]: SECRET } } });
    log.info('in an array, deep', { a: [{ b: { c: { d: [{ [key]: SECRET }] } } }] });
    log.child({ [key]: SECRET }).info('bound');
    expect(lines).toHaveLength(4);
    for (const line of lines) expect(line).not.toContain(SECRET);
    expect(records()[0]![key]).toBe('[redacted]');
  });

  it('keeps fields that only look alike: status_code, client_id, scopes, sub, session', () => {
    const { log, records } = capture();
    const fields = { status_code: 400, client_id: 'c', scopes: ['notes:read'], sub: 'u', session: 'sid', hydra_error: 'invalid_grant' };
    log.info('kept', fields);
    expect(records()[0]).toMatchObject(fields);
  });

  it('does not change the object it was given', () => {
    const { log } = capture();
    const fields = { body: { password: SECRET } };
    log.info('x', fields);
    expect(fields.body.password).toBe(SECRET);
  });
});

describe('values that broke hand-written JSON', () => {
  class HydraFailure extends Error {
    status = 503;
    access_token = 'tok-from-a-careless-error';
  }

  it('errors keep type, message and stack with their cause, and own fields, redacted, under any key', () => {
    const { log, lines, records } = capture();
    const e = new HydraFailure('introspection failed', { cause: new Error('connect ECONNREFUSED 127.0.0.1:4445') });
    log.error('x', { error: e });
    log.error('y', { err: e });
    for (const line of lines) expect(line).not.toContain('tok-from-a-careless-error');
    for (const r of records()) {
      const logged = (r.error ?? r.err) as Record<string, unknown>;
      expect(logged).toMatchObject({ type: 'HydraFailure', message: 'introspection failed: connect ECONNREFUSED 127.0.0.1:4445', status: 503, access_token: '[redacted]' });
      expect(logged.stack).toMatch(/^Error: introspection failed\n    at [\s\S]*caused by: Error: connect ECONNREFUSED/);
    }
  });

  it('a circular object, a BigInt and a Date are written, not thrown; too deep a branch is cut', () => {
    const { log, records } = capture();
    const loop: Record<string, unknown> = { name: 'loop' };
    loop.self = loop;
    let deep: Record<string, unknown> = { password: SECRET_DEEP };
    for (let i = 0; i < 20; i++) deep = { next: deep };
    expect(() => log.info('odd', { loop, big: 10n ** 20n, at: new Date(0), deep })).not.toThrow();
    const r = records()[0]!;
    expect(r.at).toBe('1970-01-01T00:00:00.000Z');
    expect(JSON.stringify(r)).not.toContain(SECRET_DEEP);
    expect(JSON.stringify(r)).toContain('[too deep]');
    expect((r.loop as Record<string, unknown>).name).toBe('loop');
  });
});

const SECRET_DEEP = 'deep-secret-past-the-depth-limit';
