import { describe, expect, it } from 'vitest';
import { canonicalResource, ResourceSet } from '../../src/auth/resource.js';

const ours = new ResourceSet([new URL('http://127.0.0.1:3000/mcp'), new URL('http://127.0.0.1:3000/sse')]);
const authUrl = (resource?: string) =>
  `http://127.0.0.1:4444/oauth2/auth?client_id=x${resource ? `&resource=${encodeURIComponent(resource)}` : ''}`;

describe('RFC 8707 resource handling', () => {
  it('normalises a trailing slash and default port', () => {
    expect(canonicalResource('https://EXAMPLE.com:443/mcp/')).toBe('https://example.com/mcp');
    expect(ours.match('http://127.0.0.1:3000/mcp/')).toBe('http://127.0.0.1:3000/mcp');
  });
  it('grants the URL of ours that the request names', () => {
    expect(ours.audienceFor(authUrl('http://127.0.0.1:3000/mcp/'))).toEqual(['http://127.0.0.1:3000/mcp']);
    expect(ours.audienceFor(authUrl('http://127.0.0.1:3000/sse'))).toEqual(['http://127.0.0.1:3000/sse']);
  });
  it('grants all our URLs when the request names no resource (clients before 2025-06-18)', () => {
    expect(ours.audienceFor(authUrl())).toEqual(['http://127.0.0.1:3000/mcp', 'http://127.0.0.1:3000/sse']);
  });
  it('never grants a resource that is not ours', () => {
    expect(ours.audienceFor(authUrl('https://other.example/mcp'))).toEqual([]);
    expect(ours.match('http://127.0.0.1:3001/mcp')).toBeUndefined();
  });
  it('refuses to be built from a non-http URL', () => {
    expect(() => new ResourceSet([new URL('ftp://x/mcp')])).toThrow(TypeError);
  });
});
