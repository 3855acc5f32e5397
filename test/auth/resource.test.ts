import { describe, expect, it } from 'vitest';
import { audienceToGrant, canonicalResource, isSameResource } from '../../src/auth/resource.js';

const ours = new URL('http://127.0.0.1:3000/mcp');

describe('RFC 8707 resource handling', () => {
  it('normalises a trailing slash and default port', () => {
    expect(canonicalResource('https://EXAMPLE.com:443/mcp/')).toBe('https://example.com/mcp');
    expect(isSameResource('http://127.0.0.1:3000/mcp/', ours)).toBe(true);
  });
  it('grants our URL when the request names it', () => {
    expect(audienceToGrant('http://h/oauth2/auth?resource=http%3A%2F%2F127.0.0.1%3A3000%2Fmcp%2F', ours)).toEqual([
      'http://127.0.0.1:3000/mcp',
    ]);
  });
  it('grants our URL when the request names no resource (pre-2025-06-18 clients)', () => {
    expect(audienceToGrant('http://h/oauth2/auth?client_id=x', ours)).toEqual(['http://127.0.0.1:3000/mcp']);
  });
  it('never grants a resource that is not ours', () => {
    expect(audienceToGrant('http://h/oauth2/auth?resource=https%3A%2F%2Fother.example%2Fmcp', ours)).toEqual([]);
  });
});
