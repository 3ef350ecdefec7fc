/** Shapes shared by several routes. */
import { Type, type Static } from 'typebox';

export const AGENT_STATES = ['unenrolled', 'passing', 'failing', 'paused'] as const;

export const AgentId = Type.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$' });
/** A PCR selection, e.g. `sha256:0-7,10` or `sha1:10+sha256:0-7,10`. */
export const PcrSelectionText = Type.String({
  pattern:
    '^(sha1|sha256|sha384|sha512|sm3_256):[0-9]{1,2}(-[0-9]{1,2})?(,[0-9]{1,2}(-[0-9]{1,2})?)*(\\+(sha1|sha256|sha384|sha512|sm3_256):[0-9]{1,2}(-[0-9]{1,2})?(,[0-9]{1,2}(-[0-9]{1,2})?)*)*$',
  maxLength: 512,
});

export const Agent = Type.Object({
  id: Type.String(),
  name: Type.String(),
  state: Type.String(),
  stateReason: Type.Unknown(),
  referenceSet: Type.Union([Type.String(), Type.Null()]),
  requirePcrs: Type.String(),
  intervalSeconds: Type.Integer(),
  enrolled: Type.Boolean(),
  createdAt: Type.String(),
  updatedAt: Type.String(),
  lastAttestedAt: Type.Union([Type.String(), Type.Null()]),
  /** pull mode: the agent's evidence endpoint (null = push mode only) */
  pullUrl: Type.Union([Type.String(), Type.Null()]),
  /** the measured-boot reference the boot is compared with (its bytes are not echoed) */
  bootReference: Type.Union([
    Type.Object({ form: Type.String(), bytes: Type.Integer(), sha256: Type.String() }),
    Type.Null(),
  ]),
  /** how a pull agent is asked: `imakit` (GET /v1/evidence) or `keylime` (Keylime's pull API) */
  transport: Type.String(),
  /** true when the agent has not been attested within two of its intervals */
  stale: Type.Boolean(),
});
export type AgentT = Static<typeof Agent>;

/** What activation and an AK proof answer: the agent's new session token (shown once) and its expiry. */
export const AgentSession = Type.Object({
  id: Type.String(),
  agentToken: Type.String(),
  expiresAt: Type.String(),
});

export const ErrorBody = Type.Object({
  error: Type.Object({ code: Type.String(), message: Type.String() }, { additionalProperties: true }),
});

/** A Keylime agent's address, `HOST:PORT` (an IPv6 host in brackets). */
export const KeylimeAgentAddress = Type.String({
  pattern: '^(\\[[0-9A-Fa-f:.]+\\]|[A-Za-z0-9.-]+):[0-9]{1,5}$',
  maxLength: 300,
});

/** An agent's pull endpoint: an absolute http(s) URL without credentials, query or fragment. */
export const PullUrl = Type.String({
  pattern: '^https?://[^/?#@\\s]+(/[^?#\\s]*)?$',
  maxLength: 2048,
});

/** Binary data as standard base64 (padding optional). */
export const Base64 = Type.String({ pattern: '^[A-Za-z0-9+/]*={0,2}$' });

/**
 * A measured-boot reference (core decodeBootReference): a golden TCG event log, PCR values as
 * `bank:index=hex` lines, or a Keylime mb_refstate JSON, as base64; `form` is detected when absent.
 */
export const BootReferenceBody = Type.Object(
  {
    form: Type.Optional(
      Type.Union([Type.Literal('eventlog'), Type.Literal('pcrs'), Type.Literal('keylime-mb-refstate')]),
    ),
    data: Type.String({ pattern: '^[A-Za-z0-9+/]*={0,2}$', minLength: 4, maxLength: 5_600_000 }),
  },
  { additionalProperties: false },
);
/** Bytes as hex. */
export const Hex = Type.String({ pattern: '^([0-9a-fA-F]{2})*$', maxLength: 256 });

/** A verdict (pipeline/types.ts), as stored and returned. */
export const VerdictBody = Type.Object(
  {
    agentId: Type.String(),
    at: Type.String(),
    status: Type.Union([Type.Literal('pass'), Type.Literal('fail')]),
    steps: Type.Array(
      Type.Object(
        {
          step: Type.String(),
          status: Type.Union([Type.Literal('pass'), Type.Literal('fail'), Type.Literal('skipped')]),
          detail: Type.String(),
        },
        { additionalProperties: true },
      ),
    ),
    failure: Type.Optional(
      Type.Object(
        { step: Type.String(), code: Type.String(), message: Type.String() },
        { additionalProperties: true },
      ),
    ),
    notEstablished: Type.Array(Type.String()),
    next: Type.Object({
      imaOffset: Type.Object({ entries: Type.Integer(), bytes: Type.Integer() }),
    }),
  },
  { additionalProperties: true },
);
