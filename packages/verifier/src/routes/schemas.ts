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
  /** true when the agent has not been attested within two of its intervals */
  stale: Type.Boolean(),
});
export type AgentT = Static<typeof Agent>;

export const ErrorBody = Type.Object({
  error: Type.Object({ code: Type.String(), message: Type.String() }, { additionalProperties: true }),
});
