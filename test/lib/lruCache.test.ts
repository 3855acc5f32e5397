import { describe, expect, it } from 'vitest';
import { LruCache } from '../../src/lib/lruCache.js';

describe('LruCache', () => {
  it('expires entries after their ttl', () => {
    let now = 1000;
    const c = new LruCache<string>(10, () => now);
    c.set('a', 'x', 50);
    expect(c.get('a')).toBe('x');
    now += 50;
    expect(c.get('a')).toBeUndefined();
  });
  it('evicts the least recently used entry beyond its bound', () => {
    const c = new LruCache<number>(2);
    c.set('a', 1, 1e6);
    c.set('b', 2, 1e6);
    c.get('a');
    c.set('c', 3, 1e6);
    expect([c.get('a'), c.get('b'), c.get('c')]).toEqual([1, undefined, 3]);
  });
  it('stores nothing for a non-positive ttl', () => {
    const c = new LruCache<number>(2);
    c.set('a', 1, 0);
    expect(c.size).toBe(0);
  });
  it('peek reads a fresh entry without marking it used, and nothing once it expired', () => {
    let now = 0;
    const c = new LruCache<number>(2, () => now);
    c.set('a', 1, 100);
    c.set('b', 2, 100);
    expect(c.peek('a')).toBe(1);
    // Not marked used by peek: 'a' is still the oldest and goes first.
    c.set('c', 3, 100);
    expect([c.peek('a'), c.peek('b'), c.peek('c')]).toEqual([undefined, 2, 3]);
    now = 100;
    expect(c.peek('b')).toBeUndefined();
  });
});
