import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config/config.js';

describe('fair-use settings', () => {
  it('issue 26 #8: default to 600 a minute with bursts of 60 per person and app, and no per-app bucket unless MCP_LIMITED_CLIENT_IDS names the app', () => {
    expect(loadConfig({}).fairUse).toEqual({ principal: { requestsPerMinute: 600, burst: 60 } });
    expect(loadConfig({ MCP_LIMITED_CLIENT_IDS: ' machine-1, https://app.example/client.json ,' }).fairUse).toEqual({
      principal: { requestsPerMinute: 600, burst: 60 },
      client: { requestsPerMinute: 6000, burst: 600, clientIds: ['machine-1', 'https://app.example/client.json'] },
    });
  });

  it('off turns both buckets off (the benchmark), the client one alone off leaves the per-person one', () => {
    expect(loadConfig({ MCP_REQUESTS_PER_MINUTE: 'off', MCP_LIMITED_CLIENT_IDS: 'machine-1' }).fairUse).toBeUndefined();
    expect(loadConfig({ MCP_CLIENT_REQUESTS_PER_MINUTE: 'off', MCP_LIMITED_CLIENT_IDS: 'machine-1', MCP_REQUESTS_PER_MINUTE: '30', MCP_BURST: '5' }).fairUse).toEqual({ principal: { requestsPerMinute: 30, burst: 5 } });
  });

  it.each([
    ['MCP_REQUESTS_PER_MINUTE', '0', 'must be a whole number of requests a minute from 1 to 60000, or off'],
    ['MCP_REQUESTS_PER_MINUTE', '-5', 'must be a whole number of requests a minute from 1 to 60000, or off'],
    ['MCP_REQUESTS_PER_MINUTE', 'abc', 'must be a whole number of requests a minute from 1 to 60000, or off'],
    ['MCP_REQUESTS_PER_MINUTE', '1.5', 'must be a whole number of requests a minute from 1 to 60000, or off'],
    ['MCP_REQUESTS_PER_MINUTE', '60001', 'must be a whole number of requests a minute from 1 to 60000, or off'],
    ['MCP_BURST', '0', 'must be a whole number of requests from 1 to 100000'],
    ['MCP_BURST', '-5', 'must be a whole number of requests from 1 to 100000'],
    ['MCP_BURST', 'abc', 'must be a whole number of requests from 1 to 100000'],
    ['MCP_CLIENT_REQUESTS_PER_MINUTE', '0', 'must be a whole number of requests a minute from 1 to 60000, or off'],
    ['MCP_CLIENT_BURST', 'abc', 'must be a whole number of requests from 1 to 100000'],
  ])('%s=%s stops the start naming the variable', (name, value, message) => {
    expect(() => loadConfig({ [name]: value })).toThrow(ConfigError);
    expect(() => loadConfig({ [name]: value })).toThrow(`  ${name}: ${message}`);
  });

  it('.env.example documents each of them', () => {
    const example = readFileSync(fileURLToPath(new URL('../../.env.example', import.meta.url)), 'utf8');
    for (const name of ['MCP_REQUESTS_PER_MINUTE=600', 'MCP_BURST=60', 'MCP_LIMITED_CLIENT_IDS=', 'MCP_CLIENT_REQUESTS_PER_MINUTE=6000', 'MCP_CLIENT_BURST=600']) expect(example).toContain(`# ${name}\n`);
  });
});
