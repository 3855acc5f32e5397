/**
 * Our stored password hash (src/account/password.ts) as Kratos v1.3.1 imports it
 * (`credentials.password.config.hashed_password`).
 *
 * Ours:   `scrypt$<N>$<r>$<p>$<salt, base64>$<key, base64>`
 * Kratos: `$scrypt$ln=<N>,r=<r>,p=<p>$<salt, base64>$<key, base64>`
 *
 * Despite its name Kratos's `ln` is N itself, not log2(N): its comparator
 * passes the number straight to scrypt as the cost (so N = 32768 is written
 * `ln=32768`). Salt and key are standard base64 with padding (Kratos decodes
 * them strictly); the key length is the decoded key's length (ours: 32).
 * kratos/README.md ("Moving users into Kratos") has the whole mapping.
 */
export class UnconvertibleHashError extends Error {
  override name = 'UnconvertibleHashError';
}

export function kratosHashFromOurs(stored: string): string {
  const parts = stored.split('$');
  if (parts.length !== 6 || parts[0] !== 'scrypt') throw new UnconvertibleHashError('not a hash in our scrypt format');
  const [n, r, p] = parts.slice(1, 4).map(Number) as [number, number, number];
  if (![n, r, p].every((x) => Number.isSafeInteger(x) && x > 0) || n < 2 || (n & (n - 1)) !== 0) {
    throw new UnconvertibleHashError('scrypt parameters out of range');
  }
  const salt = Buffer.from(parts[4]!, 'base64');
  const key = Buffer.from(parts[5]!, 'base64');
  if (salt.length === 0 || key.length === 0) throw new UnconvertibleHashError('empty salt or key');
  // Re-encoded, so whatever Node accepted is written in the strict form Kratos reads.
  return `$scrypt$ln=${n},r=${r},p=${p}$${salt.toString('base64')}$${key.toString('base64')}`;
}
