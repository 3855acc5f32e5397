import { describe, expect, it } from 'vitest';
import { protectedResourceMetadataPath, protectedResourceMetadataUrl } from '../../src/auth/prmUrl.js';

describe('protected resource metadata URL (RFC 9728 §3.1)', () => {
  it.each([
    ['https://mcp.example/mcp', 'https://mcp.example/.well-known/oauth-protected-resource/mcp'],
    ['http://127.0.0.1:3000/mcp', 'http://127.0.0.1:3000/.well-known/oauth-protected-resource/mcp'],
    ['https://mcp.example/', 'https://mcp.example/.well-known/oauth-protected-resource'],
    ['https://mcp.example', 'https://mcp.example/.well-known/oauth-protected-resource'],
    ['https://mcp.example/tenant/a/mcp', 'https://mcp.example/.well-known/oauth-protected-resource/tenant/a/mcp'],
    ['https://mcp.example/mcp/', 'https://mcp.example/.well-known/oauth-protected-resource/mcp/'],
    ['https://mcp.example/mcp?x=1', 'https://mcp.example/.well-known/oauth-protected-resource/mcp'],
  ])('%s → %s', (resource, expected) => {
    expect(protectedResourceMetadataUrl(new URL(resource))).toBe(expected);
    expect(protectedResourceMetadataPath(new URL(resource))).toBe(new URL(expected).pathname);
  });
});
