/** The API shapes the pages read (the verifier's schemas in routes/dashboard*.ts). */

export type FleetState = 'passing' | 'failing' | 'stale' | 'unenrolled' | 'paused';

export interface Cause {
  step: string | null;
  code: string | null;
  path: string | null;
  actual: string | null;
}

export interface FailureGroup extends Cause {
  hosts: number;
  scope: 'fleet' | 'host';
  agents: { id: string; name: string }[];
  since: string | null;
}

export interface EventView {
  id: number;
  agentId: string;
  at: string;
  from: string;
  to: string;
  reason: unknown;
  acknowledged?: boolean;
}

export interface Overview {
  now: string;
  counts: Record<'total' | 'passing' | 'failing' | 'stale' | 'unenrolled' | 'paused', number>;
  series: { bucketSeconds: number; t: number[]; pass: number[]; fail: number[] };
  failures: FailureGroup[];
  events: EventView[];
}

export interface AgentRow {
  id: string;
  name: string;
  state: string;
  stale: boolean;
  referenceSet: string | null;
  referenceSetName: string | null;
  lastAttestedAt: string | null;
  intervalSeconds: number;
  cause: Cause | null;
}

export interface Agent {
  id: string;
  name: string;
  state: string;
  stateReason: unknown;
  referenceSet: string | null;
  requirePcrs: string;
  intervalSeconds: number;
  enrolled: boolean;
  createdAt: string;
  updatedAt: string;
  lastAttestedAt: string | null;
  pullUrl: string | null;
  stale: boolean;
}

export interface Failure {
  step?: string;
  code?: string;
  message?: string;
  entry?: number;
  offset?: number;
  field?: string;
  path?: string;
  expected?: unknown;
  actual?: unknown;
  fix?: string;
  cause?: string;
}

export type Provenance = Record<string, string>;

export interface AgentDetail {
  agent: Agent;
  state: string;
  referenceSetName: string | null;
  failure: Failure | null;
  reference: {
    path: string;
    referenceSet: string;
    digests: { algo: string; digest: string; provenance: Provenance | null }[];
  } | null;
  verdicts: {
    id: number;
    at: string;
    status: string;
    code: string | null;
    step: string | null;
    path: string | null;
    entry: number | null;
  }[];
  notEstablished: string[];
  steps: { step: string; status: string; detail: string }[];
  pcrs: {
    at: string;
    quoted: string | null;
    banks: { bank: string; pcrs: { index: number; value: string; quoted: boolean }[] }[];
  } | null;
  boot: {
    events: { index: number; pcr: number; type: string; digests: Record<string, string>; size: number }[];
    error: string | null;
  } | null;
  list: { entries: number; firstEntry: number; bytes: number } | null;
  events: EventView[];
}

export interface ImaPage {
  referenceSet: string | null;
  listEntries: number;
  firstEntry: number;
  total: number;
  entries: {
    index: number;
    offset: number;
    path: string;
    template: string;
    status: string;
    reason: string;
    algo: string | null;
    digest: string | null;
    keyId: string | null;
    provenance: Provenance | null;
  }[];
  unusable: { code: string; message: string } | null;
  notEstablished: string[];
}

export interface RefSetListItem {
  id: string;
  name: string;
  bytes: number;
  agents: number;
  createdAt: string;
}

export interface RefSetDetail {
  id: string;
  name: string;
  createdAt: string;
  meta: Record<string, unknown>;
  hashAlgo: string | null;
  paths: number;
  keys: number;
  excludes: string[];
  agents: number;
  provenances: { provenance: Provenance; paths: number }[];
  provenanceCount: number;
  matches: { path: string; digests: { algo: string; digest: string; provenance: Provenance | null }[] }[];
}

export interface RefDiff {
  from: string;
  to: string;
  added: number;
  removed: number;
  changed: number;
  unchanged: number;
  packages: unknown[];
  other: string[];
}

export interface Impact {
  referenceSet: string;
  matched: number;
  evaluated: number;
  wouldPass: number;
  wouldFail: number;
  noList: number;
  results: {
    agentId: string;
    name: string;
    state: string;
    outcome: 'pass' | 'fail' | 'no-list';
    entries: number;
    refused: number;
    unusable: { code: string; message: string } | null;
    first: { entry: number; offset: number; path: string; reason: string; actual: string | null }[];
  }[];
  notEstablished: string[];
}
