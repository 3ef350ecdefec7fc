/**
 * Keylime's stateless evidence endpoint, `POST /v2.<minor>/verify/evidence` (any 2.x minor, as
 * Keylime 7.14's tornado route `/v?[0-9]+(?:\.[0-9]+)?/verify/evidence` serves the 2.x API),
 * answered in Keylime's envelope `{code, status, results: {valid, claims, failures}}` by imakit's
 * pipeline (keylime/evidence.ts), plus `results.imakit` with the steps and what was not established.
 *
 * Like Keylime (auth action VERIFY_EVIDENCE, a public route: no client certificate, no token) it
 * needs no operator token by default; `role` makes it need one. It stores nothing. The body is
 * bounded by its own limit (a list and a policy ride in it).
 */
import { Type } from 'typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { Role } from '../auth.ts';
import { verifyKeylimeEvidence, type KeylimeTpmEvidence } from '../keylime/evidence.ts';

export interface KeylimeEvidenceOptions {
  /** largest body accepted, bytes */
  readonly bodyLimit: number;
  /** the least role needed; undefined = public, as in Keylime */
  readonly role?: Role;
}

const KEYS = [
  'quote',
  'nonce',
  'hash_alg',
  'tpm_ek',
  'tpm_ak',
  'tpm_policy',
  'runtime_policy',
  'mb_policy',
  'ima_measurement_list',
  'mb_log',
] as const;

const Body = Type.Object({ type: Type.Optional(Type.Unknown()), data: Type.Optional(Type.Unknown()) });

/** Keylime's envelope: `{code, status, results}`. */
const envelope = (code: number, status: string, results: Record<string, unknown> = {}) => ({
  code,
  status,
  results,
});

export const keylimeEvidenceRoutes: FastifyPluginAsyncTypebox<KeylimeEvidenceOptions> = async (app, opts) => {
  app.post(
    '/:version/verify/evidence',
    {
      bodyLimit: opts.bodyLimit,
      config: { ...(opts.role !== undefined && { role: opts.role }) },
      schema: {
        tags: ['keylime'],
        summary: "Keylime's stateless evidence check (type tpm), Keylime's answer shape",
        ...(opts.role === undefined && { security: [] }),
        params: Type.Object({ version: Type.String({ pattern: '^v2\\.[0-9]{1,2}$' }) }),
        body: Body,
      },
    },
    async (req, reply) => {
      const { type, data } = req.body;
      if (typeof type !== 'string' || type === '')
        return reply.status(400).send(envelope(400, "missing parameter 'type'"));
      if (data === undefined || data === '' || data === null)
        return reply.status(400).send(envelope(400, "missing parameter 'data'"));
      if (type !== 'tpm')
        return reply
          .status(400)
          .send(
            envelope(
              400,
              type === 'tee' ? 'evidence type tee is not supported by imakit' : 'invalid evidence type',
            ),
          );
      if (typeof data !== 'object' || Array.isArray(data))
        return reply.status(400).send(envelope(400, "parameter 'data' must be an object"));
      const fields: Record<string, string> = {};
      for (const k of KEYS) {
        const v = (data as Record<string, unknown>)[k];
        if (v === undefined || v === null) continue;
        // Keylime's policies may arrive as JSON objects in clients that do not stringify them
        if (typeof v === 'object' && (k === 'tpm_policy' || k === 'runtime_policy' || k === 'mb_policy'))
          fields[k] = JSON.stringify(v);
        else if (typeof v === 'string') fields[k] = v;
        else
          return reply.status(400).send(
            envelope(400, 'Bad Request', {
              valid: false,
              claims: {},
              failures: [
                {
                  type: 'default.invalid_param',
                  context: { message: `data.${k} must be a string`, field: `data.${k}` },
                },
              ],
            }),
          );
      }
      const r = verifyKeylimeEvidence(fields as KeylimeTpmEvidence);
      const results = { valid: r.valid, claims: r.claims, failures: r.failures, imakit: r.imakit };
      return reply.status(r.http).send(envelope(r.http, r.http === 200 ? 'Success' : 'Bad Request', results));
    },
  );
};
