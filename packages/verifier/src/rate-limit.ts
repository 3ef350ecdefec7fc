/**
 * Request rate limits: one token bucket per key (an agent id, an operator token, a client
 * address), refilled continuously. Memory is bounded: at most `maxKeys` buckets are kept, and when
 * a new key arrives at the bound the least recently used bucket is dropped (a JavaScript Map
 * iterates in insertion order; a hit re-inserts its key). A dropped bucket only forgets how much a
 * quiet client spent, so the bound never lets anyone past their rate for long: a full bucket is
 * what a new key gets anyway.
 *
 * The limiter is created per app (no module state) and reads the clock it is given, so tests
 * drive time without waiting.
 */

/** One class of clients' limit: `perSecond` sustained, up to `burst` at once. */
export interface RateLimit {
  readonly perSecond: number;
  readonly burst: number;
}

/** The verifier's limits; `false` turns a class off. */
export interface RateLimitConfig {
  /** per agent id, on the routes an agent authenticates to (challenge, evidence, session) */
  readonly agent?: RateLimit | false;
  /** per operator token, on the API routes that need a role */
  readonly operator?: RateLimit | false;
  /**
   * per client address, on routes without credentials (registrar, the Keylime evidence endpoint)
   * and on every request before its credentials are looked up
   */
  readonly address?: RateLimit | false;
  /** loopback clients skip the per-address limit (the load generator, a local reverse proxy) */
  readonly exemptLoopback?: boolean;
  /** buckets kept per class (least recently used dropped first) */
  readonly maxKeys?: number;
}

/**
 * Defaults: generous enough that a 10,000-agent load run on loopback is never limited (each agent
 * attests once per interval: two requests), strict enough that one client cannot monopolise the
 * database with requests that each cost a query.
 */
export const DEFAULT_RATE_LIMITS: Readonly<Required<RateLimitConfig>> = Object.freeze({
  agent: Object.freeze({ perSecond: 10, burst: 60 }),
  operator: Object.freeze({ perSecond: 100, burst: 1000 }),
  address: Object.freeze({ perSecond: 200, burst: 2000 }),
  exemptLoopback: true,
  maxKeys: 100_000,
});

/** The outcome of one request: allowed, or refused with the seconds until a token is back. */
export type RateDecision = { readonly ok: true } | { readonly ok: false; readonly retryAfterS: number };

export interface RateLimiter {
  /** take one token from `key`'s bucket */
  take(key: string): RateDecision;
  /** buckets held (for tests: the bound holds) */
  size(): number;
}

interface Bucket {
  tokens: number;
  at: number;
}

/**
 * A token-bucket limiter for one class of clients.
 * @param now milliseconds clock (default Date.now)
 * @throws RangeError for a rate or burst that is not positive, or maxKeys < 1
 */
export function createRateLimiter(
  limit: RateLimit,
  maxKeys: number,
  now: () => number = Date.now,
): RateLimiter {
  if (!(limit.perSecond > 0) || !(limit.burst >= 1))
    throw new RangeError(`a rate limit needs perSecond > 0 and burst ≥ 1, not ${JSON.stringify(limit)}`);
  if (!Number.isSafeInteger(maxKeys) || maxKeys < 1)
    throw new RangeError(`maxKeys must be ≥ 1, not ${maxKeys}`);
  const buckets = new Map<string, Bucket>();
  return Object.freeze({
    take(key: string): RateDecision {
      const t = now();
      let b = buckets.get(key);
      if (b === undefined) {
        if (buckets.size >= maxKeys) buckets.delete(buckets.keys().next().value!);
        b = { tokens: limit.burst, at: t };
      } else {
        buckets.delete(key);
        b.tokens = Math.min(limit.burst, b.tokens + ((t - b.at) / 1000) * limit.perSecond);
        b.at = t;
      }
      buckets.set(key, b);
      if (b.tokens >= 1) {
        b.tokens -= 1;
        return { ok: true };
      }
      return { ok: false, retryAfterS: Math.max(1, Math.ceil((1 - b.tokens) / limit.perSecond)) };
    },
    size: () => buckets.size,
  });
}

/** True for 127.0.0.0/8, ::1 and IPv4-mapped loopback. */
export function isLoopbackAddress(ip: string): boolean {
  return ip === '::1' || /^(::ffff:)?127\./.test(ip);
}
