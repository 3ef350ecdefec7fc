/**
 * The verifier's app factory (style.md practice 12): `buildApp(deps)` returns a configured fastify
 * instance; `serve` only listens. Schemas sit beside their routes (TypeBox, so the OpenAPI document
 * at /openapi.json needs no converter); one error handler maps the catalogue (errors.ts), imakit's
 * codec errors and schema failures to `{ error: { code, message, ... } }` and never answers bad
 * input with a 500 or a stack.
 */
import { createHash } from 'node:crypto';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import Fastify, {
  type FastifyBaseLogger,
  type FastifyError,
  type FastifyInstance,
  type FastifyReply,
} from 'fastify';
import swagger from '@fastify/swagger';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { CATALOGUE, ImakitError } from 'imakit/errors';
import type { PublicKey } from 'imakit/core';
import type { OpenDatabase } from './db/open.ts';
import { VERIFIER_CATALOGUE, VerifierError } from './errors.ts';
import { roleAllows, roleOfBearer, type Role } from './auth.ts';
import { healthRoutes } from './routes/health.ts';
import { dashboardRoutes } from './routes/dashboard.ts';
import { dashboardImpactRoutes } from './routes/dashboard-impact.ts';
import { dashboardStreamRoutes } from './routes/dashboard-stream.ts';
import { dashboardStaticRoutes } from './routes/dashboard-static.ts';
import { agentRoutes } from './routes/agents.ts';
import { eventRoutes } from './routes/events.ts';
import { referenceSetRoutes } from './routes/reference-sets.ts';
import { registrarRoutes } from './routes/registrar.ts';
import { attestRoutes } from './routes/attest.ts';
import { verdictRoutes } from './routes/verdicts.ts';
import { keylimeEvidenceRoutes } from './routes/keylime-evidence.ts';
import { agentOfToken } from './agent-auth.ts';
import { ReferenceSetCache } from './refs-store.ts';
import {
  createRateLimiter,
  DEFAULT_RATE_LIMITS,
  isLoopbackAddress,
  type RateLimit,
  type RateLimitConfig,
  type RateLimiter,
} from './rate-limit.ts';
import { agentSessionRoutes } from './routes/agent-session.ts';

export interface AppDeps {
  readonly database: OpenDatabase;
  /** largest request body accepted, bytes (measurement lists arrive in evidence) */
  readonly bodyLimit?: number;
  readonly logger?: boolean;
  /** verdicts kept per agent; older ones are deleted (default 100) */
  readonly verdictRetention?: number;
  /** seconds a challenge nonce stays valid (default 120) */
  readonly nonceTtlSeconds?: number;
  /** unanswered challenges one agent may hold (default 8; more is 429) */
  readonly maxOutstandingNonces?: number;
  /** parsed reference sets kept in memory (default 32) */
  readonly referenceSetCacheSize?: number;
  /**
   * enrolment of an id no operator added creates the agent (with the default PCRs and no
   * reference set) instead of answering 404 (default false)
   */
  readonly autoEnrol?: boolean;
  /**
   * a directory of static files served at `/` (the built @imakit/dashboard's dist/, which
   * `imakit verifier serve` passes); omitted: no dashboard, the API only
   */
  readonly dashboardDir?: string;
  /**
   * Keys reference sets must be signed by (core PublicKeys: `loadPublicKey` of a PEM/DER key or
   * certificate). Given: every upload must carry a signature one of them verifies (a DSSE envelope,
   * or a detached `imakit refs sign` signature in `?signature=`); omitted or empty: sets are
   * stored unchecked and say so.
   */
  readonly refsKeys?: readonly PublicKey[];
  /** milliseconds between reads of new events while dashboard streams are open (default 1000) */
  readonly streamPollMs?: number;
  /**
   * Keylime's stateless `POST /v2.x/verify/evidence`: `false` turns it off; `role` makes it need
   * an operator token (default: public, as in Keylime); `bodyLimit` bounds its body (default 32 MiB)
   */
  readonly keylimeEvidence?: false | { readonly role?: Role; readonly bodyLimit?: number };
  /**
   * request rate limits per agent, per operator token and per client address (rate-limit.ts;
   * a 429 V_RATE_LIMITED with Retry-After); `false` turns them all off; omitted classes keep
   * DEFAULT_RATE_LIMITS
   */
  readonly rateLimit?: false | RateLimitConfig;
  /** seconds an agent's session token lives (issued at activation and by AK proof; default 3600) */
  readonly agentSessionSeconds?: number;
}

declare module 'fastify' {
  interface FastifyContextConfig {
    /** the least role a route needs; undefined = no token needed */
    role?: Role;
    /** the route needs an agent token (`Authorization: Agent <token>`) */
    agent?: boolean;
  }
  interface FastifyRequest {
    /** the agent the token belongs to, on routes with `config.agent` */
    agentId: string | undefined;
  }
}

export type App = FastifyInstance<
  Server,
  IncomingMessage,
  ServerResponse,
  FastifyBaseLogger,
  TypeBoxTypeProvider
>;

const DEFAULT_BODY_LIMIT = 64 * 1024 * 1024;

export async function buildApp(deps: AppDeps): Promise<App> {
  const app = Fastify({
    logger: deps.logger ?? false,
    bodyLimit: deps.bodyLimit ?? DEFAULT_BODY_LIMIT,
    // query strings and path parameters arrive as text: numbers are coerced there (fastify's default)
    ajv: { customOptions: { removeAdditional: false, coerceTypes: 'array', allErrors: false } },
  }).withTypeProvider<TypeBoxTypeProvider>();
  const { db } = deps.database;

  await app.register(swagger, {
    openapi: {
      info: { title: 'imakit verifier', version: '0.1.0' },
      components: {
        securitySchemes: {
          bearer: { type: 'http', scheme: 'bearer' },
          // the agent's session token, bound to its AK (agent-auth.ts)
          agent: {
            type: 'apiKey',
            in: 'header',
            name: 'Authorization',
            description:
              '`Agent <session token>`: issued at activation, renewed by an AK proof (/v1/registrar/session)',
          },
        },
      },
      security: [{ bearer: [] }],
    },
  });

  app.decorateRequest('agentId', undefined);
  const limits = rateLimiters(deps.rateLimit);
  const limited = (l: RateLimiter | undefined, key: string, reply: FastifyReply): void => {
    const d = l?.take(key);
    if (d === undefined || d.ok) return;
    void reply.header('retry-after', String(d.retryAfterS));
    throw new VerifierError('V_RATE_LIMITED', `too many requests: retry in ${d.retryAfterS} s`, {
      retryAfterSeconds: d.retryAfterS,
    });
  };
  app.addHook('onRequest', async (req, reply) => {
    // the address limit comes before any credential is looked up: a flood costs no query
    if (!(limits.exemptLoopback && isLoopbackAddress(req.ip))) limited(limits.address, req.ip, reply);
    if (req.routeOptions.config.agent === true) {
      req.agentId = await agentOfToken(db, req.headers.authorization);
      limited(limits.agent, req.agentId, reply);
    }
    const need = req.routeOptions.config.role;
    if (need === undefined) return;
    const have = await roleOfBearer(db, req.headers.authorization);
    limited(limits.operator, sha256Hex(req.headers.authorization ?? ''), reply);
    if (!roleAllows(have, need))
      throw new VerifierError('V_FORBIDDEN', `this needs the '${need}' role; the token has '${have}'`, {
        role: have,
      });
  });

  app.setErrorHandler((err: FastifyError | Error, _req, reply) => {
    if (err instanceof VerifierError)
      return reply.status(err.http).send({ error: { code: err.code, message: err.message, ...err.context } });
    if (err instanceof ImakitError) {
      // imakit's catalogue gives each code an HTTP status; input errors never become a 500
      const status = CATALOGUE[err.code].http;
      return reply.status(status >= 500 ? 400 : status).send({ error: err.toJSON() });
    }
    const fe = err as FastifyError;
    if (fe.validation !== undefined) {
      const v = fe.validation[0];
      const field = `${fe.validationContext ?? 'body'}${v?.instancePath ?? ''}`;
      return reply
        .status(400)
        .send({ error: { code: 'V_VALIDATION', message: `${field} ${v?.message ?? 'is invalid'}`, field } });
    }
    if (fe.code === 'FST_ERR_CTP_BODY_TOO_LARGE')
      return reply.status(413).send({ error: { code: 'V_BODY_TOO_LARGE', message: fe.message } });
    if (typeof fe.statusCode === 'number' && fe.statusCode >= 400 && fe.statusCode < 500)
      return reply.status(fe.statusCode).send({ error: { code: 'V_BAD_REQUEST', message: fe.message } });
    if (isDatabaseDown(err))
      return reply.status(503).send({
        error: {
          code: 'V_DATABASE_UNAVAILABLE',
          message: VERIFIER_CATALOGUE.V_DATABASE_UNAVAILABLE.message,
        },
      });
    app.log.error(err);
    return reply.status(500).send({ error: { code: 'V_INTERNAL', message: 'internal error' } });
  });
  app.setNotFoundHandler((req, reply) =>
    reply.status(404).send({ error: { code: 'V_NOT_FOUND', message: `no route ${req.method} ${req.url}` } }),
  );

  await app.register(healthRoutes, { database: deps.database });
  await app.register(agentRoutes, { db });
  await app.register(eventRoutes, { db });
  const refs = new ReferenceSetCache(deps.referenceSetCacheSize ?? 32);
  await app.register(referenceSetRoutes, { db, refs, refsKeys: deps.refsKeys ?? [] });
  const sessionSeconds = deps.agentSessionSeconds ?? 3600;
  await app.register(registrarRoutes, { db, autoEnrol: deps.autoEnrol ?? false, sessionSeconds });
  await app.register(agentSessionRoutes, { db, sessionSeconds });
  await app.register(attestRoutes, {
    db,
    refs,
    retention: deps.verdictRetention ?? 100,
    nonceTtlSeconds: deps.nonceTtlSeconds ?? 120,
    maxOutstandingNonces: deps.maxOutstandingNonces ?? 8,
  });
  await app.register(verdictRoutes, { db });
  await app.register(dashboardRoutes, { db, refs });
  await app.register(dashboardImpactRoutes, { db, refs });
  await app.register(dashboardStreamRoutes, { db, pollMs: deps.streamPollMs ?? 1000 });
  if (deps.dashboardDir !== undefined) await app.register(dashboardStaticRoutes, { dir: deps.dashboardDir });
  if (deps.keylimeEvidence !== false)
    await app.register(keylimeEvidenceRoutes, {
      bodyLimit: deps.keylimeEvidence?.bodyLimit ?? 32 * 1024 * 1024,
      ...(deps.keylimeEvidence?.role !== undefined && { role: deps.keylimeEvidence.role }),
    });
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
  app.addHook('onClose', async () => deps.database.close());
  return app;
}

interface Limiters {
  readonly agent: RateLimiter | undefined;
  readonly operator: RateLimiter | undefined;
  readonly address: RateLimiter | undefined;
  readonly exemptLoopback: boolean;
}

function rateLimiters(cfg: false | RateLimitConfig | undefined): Limiters {
  if (cfg === false)
    return { agent: undefined, operator: undefined, address: undefined, exemptLoopback: true };
  const c = { ...DEFAULT_RATE_LIMITS, ...cfg };
  const make = (l: RateLimit | false): RateLimiter | undefined =>
    l === false ? undefined : createRateLimiter(l, c.maxKeys);
  return {
    agent: make(c.agent),
    operator: make(c.operator),
    address: make(c.address),
    exemptLoopback: c.exemptLoopback,
  };
}

const sha256Hex = (s: string): string => createHash('sha256').update(s).digest('hex');

/** A lost or refused database connection (node-postgres and PGlite both surface these). */
export function isDatabaseDown(err: unknown): boolean {
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string' && /^(ECONNREFUSED|ECONNRESET|ETIMEDOUT|EPIPE|57P0[1-3]|08\d{3})$/.test(code))
    return true;
  return (
    err instanceof Error &&
    /Connection terminated|connection (refused|closed)|PGlite is closed/i.test(err.message)
  );
}
