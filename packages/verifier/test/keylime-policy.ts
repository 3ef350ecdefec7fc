/** A Keylime runtime policy (JSON text) for the verifier's tests. */

/** A runtime policy allowing `digests` (path → hex file digests) and nothing else. */
export function keylimePolicy(digests: Record<string, string[]>): string {
  return JSON.stringify({
    meta: { version: 1, generator: 3 },
    release: 0,
    digests,
    excludes: [],
    keyrings: {},
    ima: { ignored_keyrings: [], log_hash_alg: 'sha1', dm_policy: null },
    'ima-buf': {},
    'verification-keys': '',
  });
}
