import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config/config.js';

/** CIMD_TEST_LOOPBACK_CA: the test-only opening of the metadata-document fetcher to loopback. */
describe('CIMD_TEST_LOOPBACK_CA', () => {
  let dir: string;
  const pem = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'cimd-config-'));
    await writeFile(join(dir, 'ca.pem'), pem);
    await writeFile(join(dir, 'not-a-cert.txt'), 'hello');
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('is off by default', () => {
    expect(loadConfig({}).cimd).toEqual({ mirrorIdleDays: 31 });
  });

  it('reads the CA file when set', () => {
    expect(loadConfig({ CIMD_TEST_LOOPBACK_CA: join(dir, 'ca.pem') }).cimd).toEqual({ mirrorIdleDays: 31, testLoopbackCa: pem });
  });

  it.each([
    ['a missing file', () => join(dir, 'nope.pem'), /CIMD_TEST_LOOPBACK_CA: cannot read .*nope\.pem \(ENOENT\)/],
    ['a file that is not a PEM certificate', () => join(dir, 'not-a-cert.txt'), /CIMD_TEST_LOOPBACK_CA: .*not-a-cert\.txt is not a PEM certificate/],
  ])('refuses %s, naming the variable', (_name, path, message) => {
    expect(() => loadConfig({ CIMD_TEST_LOOPBACK_CA: path() })).toThrow(ConfigError);
    expect(() => loadConfig({ CIMD_TEST_LOOPBACK_CA: path() })).toThrow(message);
  });

  it('is refused with NODE_ENV=production, naming the variable and its risk', () => {
    const env = { NODE_ENV: 'production', SESSION_SECRET: 'a'.repeat(40), CIMD_TEST_LOOPBACK_CA: join(dir, 'ca.pem') };
    expect(() => loadConfig(env)).toThrow(/CIMD_TEST_LOOPBACK_CA: must not be set with NODE_ENV=production \(it lets client metadata documents be fetched from loopback\)/);
    const { CIMD_TEST_LOOPBACK_CA: _unset, ...withoutIt } = env;
    expect(loadConfig(withoutIt).cimd).toEqual({ mirrorIdleDays: 31 });
  });
});
