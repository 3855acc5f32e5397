import { describe, expect, it } from 'vitest';
import { stateForHydra } from '../../src/auth/hydraProvider.js';

describe('stateForHydra (Hydra needs ≥ 8 characters; OAuth 2.1 §4.1.1 lets PKCE clients omit state)', () => {
  it('supplies a random state when the client sends none', () => {
    const a = stateForHydra(undefined);
    const b = stateForHydra(undefined);
    expect(a.length).toBeGreaterThanOrEqual(16);
    expect(a).not.toBe(b);
  });
  it('supplies one for an empty state too', () => expect(stateForHydra('').length).toBeGreaterThanOrEqual(16));
  it('passes a long enough state through unchanged', () => expect(stateForHydra('12345678')).toBe('12345678'));
  it.each(['a', 'abc', '1234567'])('refuses the short state %j with the rule named', (s) =>
    expect(() => stateForHydra(s)).toThrow('state must be at least 8 characters'),
  );
});
