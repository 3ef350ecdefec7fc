/**
 * `TpmClient`: TPM 2.0 commands over one transport. It serialises its callers (one command in
 * flight), turns every non-zero response code into a `TpmError` naming the command, and, when no
 * resource manager sits in between (swtpm, `/dev/tpm0`), remembers every transient object and
 * session it loads and flushes them in `close()` (tpm.md gotcha 1: three leaked objects exhaust
 * swtpm). Sessions started for one authorization are flushed by the TPM itself (continueSession
 * clear) and forgotten here after use.
 *
 * @example
 * const tpm = await TpmClient.open('swtpm:127.0.0.1:2321');
 * try { const pcrs = await tpm.pcrRead(parsePcrSelectionText('sha256:0-23')); } finally { await tpm.close(); }
 */
import { randomBytes } from 'node:crypto';
import { ImakitError } from '../../errors.ts';
import { TPM_CAP, TPM_HT, TPM_PT, TPM_RH, TPM_SE, TPM_SU, TPM_ALG } from '../../core/tpm/constants.ts';
import type { PcrSelection } from '../../core/tpm/pcr-selection.ts';
import type { TpmtPublic } from '../../core/tpm/public.ts';
import {
  decodeResponse,
  encodeCommand,
  passwordAuth,
  policyAuth,
  responseCodeOf,
  RETRY_RCS,
  TpmError,
  type TpmAuth,
  type TpmCommandSpec,
} from '../../core/tpm/commands/frame.ts';
import {
  startupCommand,
  shutdownCommand,
  getRandomCommand,
  TPM_RC_INITIALIZE,
} from '../../core/tpm/commands/startup.ts';
import { getCapabilityCommand, type CapabilityData } from '../../core/tpm/commands/capability.ts';
import {
  pcrExtendCommand,
  pcrReadCommand,
  pcrResetCommand,
  remainingSelection,
  type TaggedDigest,
} from '../../core/tpm/commands/pcr.ts';
import {
  flushContextCommand,
  policySecretCommand,
  startAuthSessionCommand,
} from '../../core/tpm/commands/session.ts';
import {
  createCommand,
  createPrimaryCommand,
  evictControlCommand,
  loadCommand,
  readPublicCommand,
  type CreatePrimaryResult,
  type CreateResult,
  type LoadResult,
  type ReadPublicResult,
} from '../../core/tpm/commands/object.ts';
import { nvReadCommand, nvReadPublicCommand, type NvReadPublicResult } from '../../core/tpm/commands/nv.ts';
import { quoteCommand, certifyCommand, type AttestResult } from '../../core/tpm/commands/attest.ts';
import { activateCredentialCommand, type Credential } from '../../core/tpm/commands/credential.ts';
import {
  ekTemplate,
  ekNeedsPolicy,
  type EkKind,
  akTemplate,
  type AkKind,
} from '../../core/tpm/commands/templates.ts';
import {
  openTransport,
  parseTpmSelector,
  type TpmLocation,
  type TpmTransport,
  type TransportOptions,
} from './transport.ts';
import { swtpmInit } from './swtpm-ctrl.ts';

/** PCR values by bank name then index. */
export interface PcrValues {
  readonly updateCounter: number;
  /** `[{ hashAlg, pcr, value }]` in the order asked */
  readonly values: readonly { readonly hashAlg: number; readonly pcr: number; readonly value: Uint8Array }[];
}

/** A key the client has loaded (flushed on close unless it is persistent). */
export interface LoadedKey {
  readonly handle: number;
  readonly name: Uint8Array;
  /** TPM2B_PUBLIC as the TPM returned it */
  readonly publicBytes: Uint8Array;
  readonly public: TpmtPublic;
}

/** An EK loaded by CreatePrimary, with how to authorize it. */
export interface LoadedEk extends LoadedKey {
  readonly kind: EkKind;
}

/** What `createAk` returns: the wrapped key to store and the key, loaded. */
export interface CreatedAk {
  readonly outPrivate: Uint8Array;
  readonly key: LoadedKey;
}

export interface TpmClientOptions extends TransportOptions {
  /** largest NV_Read chunk (default: the TPM's TPM_PT_NV_BUFFER_MAX) */
  readonly nvChunk?: number;
}

/** Times a command answered TPM_RC_RETRY (or YIELDED, TESTING) is sent again. */
const MAX_RETRIES = 20;

const isTransient = (h: number): boolean => h >>> 24 === TPM_HT.TRANSIENT;
const isSession = (h: number): boolean =>
  h >>> 24 === TPM_HT.HMAC_SESSION || h >>> 24 === TPM_HT.POLICY_SESSION;

export class TpmClient {
  private queue: Promise<unknown> = Promise.resolve();
  private readonly loaded = new Set<number>();
  private closed = false;

  private constructor(
    readonly transport: TpmTransport,
    readonly location: TpmLocation,
    private readonly opts: TpmClientOptions,
  ) {}

  /**
   * Connect to the TPM at `where` (a `--tpm` selector or a parsed location).
   * @throws ImakitError E_USAGE (bad selector), E_TPM_TRANSPORT, E_TPM_TIMEOUT
   */
  static async open(
    where: string | TpmLocation = '/dev/tpmrm0',
    opts: TpmClientOptions = {},
  ): Promise<TpmClient> {
    const loc = typeof where === 'string' ? parseTpmSelector(where) : where;
    return new TpmClient(await openTransport(loc, opts), loc, opts);
  }

  /** The TPM's description for messages. */
  get describe(): string {
    return this.transport.describe;
  }

  /**
   * Send one command and decode its response. Every response code other than success is a
   * TpmError (E_TPM_RC) naming the command and the decoded code.
   */
  run<T>(spec: TpmCommandSpec<T>): Promise<T> {
    const go = async (): Promise<T> => {
      if (this.closed) throw new ImakitError('E_TPM_TRANSPORT', `${this.describe}: client closed`);
      const cmd = encodeCommand(spec);
      for (let attempt = 1; ; attempt++) {
        const resp = await this.transport.transmit(cmd);
        if (attempt < MAX_RETRIES && RETRY_RCS.has(responseCodeOf(resp))) continue;
        return decodeResponse(spec, resp);
      }
    };
    const p = this.queue.then(go, go);
    this.queue = p.catch(() => undefined);
    return p;
  }

  private track(h: number): void {
    if (!this.transport.managed && (isTransient(h) || isSession(h))) this.loaded.add(h);
  }

  /** Flush a transient object or session (and forget it). */
  async flush(handle: number): Promise<void> {
    this.loaded.delete(handle);
    await this.run(flushContextCommand(handle));
  }

  /** Flush what this client loaded, then close the connection. Flush failures do not mask the close. */
  async close(): Promise<void> {
    if (this.closed) return;
    for (const h of [...this.loaded]) {
      try {
        await this.flush(h);
      } catch {
        // a session the TPM already dropped, a TPM that went away: closing must still happen
      }
    }
    this.closed = true;
    await this.transport.close();
  }

  /** TPM2_Startup; TPM_RC_INITIALIZE (already started) counts as success. Returns whether it started now. */
  async startup(type: number = TPM_SU.CLEAR): Promise<boolean> {
    try {
      await this.run(startupCommand(type));
      return true;
    } catch (e) {
      if (e instanceof TpmError && e.rc === TPM_RC_INITIALIZE) return false;
      throw e;
    }
  }

  /** TPM2_Shutdown. */
  shutdown(type: number = TPM_SU.CLEAR): Promise<void> {
    return this.run(shutdownCommand(type));
  }

  /**
   * Power-cycle a software TPM through swtpm's ctrl port (TPM Reset, tpm.md fact (b)):
   * TPM2_Shutdown(CLEAR), CMD_INIT, TPM2_Startup(CLEAR). Loaded objects and sessions are gone after.
   * @throws ImakitError E_USAGE when the TPM is not `swtpm:HOST:PORT`
   */
  async powerCycle(): Promise<void> {
    const loc = this.location;
    if (loc.kind !== 'swtpm')
      throw new ImakitError(
        'E_USAGE',
        `${this.describe}: power cycling needs swtpm's ctrl port (swtpm:HOST:PORT)`,
      );
    await this.shutdown(TPM_SU.CLEAR);
    await swtpmInit({ host: loc.host, port: loc.ctrlPort });
    this.loaded.clear();
    await this.startup(TPM_SU.CLEAR);
  }

  /** TPM2_GetRandom, looped until `n` bytes. */
  async getRandom(n: number): Promise<Uint8Array> {
    const out = new Uint8Array(n);
    let have = 0;
    while (have < n) {
      const b = await this.run(getRandomCommand(Math.min(32, n - have)));
      if (b.length === 0)
        throw new ImakitError('E_TPM_RESPONSE', `${this.describe}: GetRandom returned nothing`);
      out.set(b.subarray(0, n - have), have);
      have += b.length;
    }
    return out;
  }

  /** Every entry of one capability, following moreData. */
  private async capabilityAll<K extends CapabilityData['capability']>(
    cap: number,
    first: number,
    kind: K,
  ): Promise<Extract<CapabilityData, { capability: K }>[]> {
    const out: Extract<CapabilityData, { capability: K }>[] = [];
    let next = first;
    for (let i = 0; i < 64; i++) {
      const res = await this.run(getCapabilityCommand(cap, next, 256));
      if (res.data.capability !== kind)
        throw new ImakitError(
          'E_TPM_RESPONSE',
          `${this.describe}: asked for ${kind}, got ${res.data.capability}`,
        );
      const d = res.data as Extract<CapabilityData, { capability: K }>;
      out.push(d);
      if (!res.moreData) return out;
      const last = lastKey(res.data);
      if (last === undefined) return out;
      next = last + 1;
    }
    return out;
  }

  /** The algorithms the TPM implements (TPM_CAP_ALGS). */
  async algorithms(): Promise<{ alg: number; attributes: number }[]> {
    return (await this.capabilityAll(TPM_CAP.ALGS, 0, 'algs')).flatMap((d) => [...d.algs]);
  }

  /** Handles of one type present (`TPM_HT.PERSISTENT << 24`, `TPM_HT.NV_INDEX << 24`, ...). */
  async handles(first: number): Promise<number[]> {
    const top = first >>> 24;
    return (await this.capabilityAll(TPM_CAP.HANDLES, first, 'handles'))
      .flatMap((d) => [...d.handles])
      .filter((h) => h >>> 24 === top);
  }

  /** The PCR banks and which PCRs each has allocated (TPM_CAP_PCRS). */
  async pcrBanks(): Promise<PcrSelection> {
    const res = await this.run(getCapabilityCommand(TPM_CAP.PCRS, 0, 1));
    if (res.data.capability !== 'pcrs')
      throw new ImakitError('E_TPM_RESPONSE', `${this.describe}: asked for PCRs, got ${res.data.capability}`);
    return res.data.pcrs;
  }

  /** TPM properties from `first` (TPM_PT_FIXED 0x100, TPM_PT_VAR 0x200) as a map. */
  async properties(first: number = TPM_PT.FAMILY_INDICATOR): Promise<Map<number, number>> {
    const m = new Map<number, number>();
    const group = first & ~0xff;
    for (const d of await this.capabilityAll(TPM_CAP.TPM_PROPERTIES, first, 'properties'))
      for (const p of d.properties) if ((p.property & ~0xff) === group) m.set(p.property, p.value);
    return m;
  }

  /**
   * PCR_Read of every PCR in `sel`, looping as the TPM returns partial selections (at most 8
   * digests per call). Values come back in `sel` order.
   * @throws ImakitError E_TPM_RESPONSE when the TPM returns nothing new for what is left (a PCR or
   *   bank it does not have)
   */
  async pcrRead(sel: PcrSelection): Promise<PcrValues> {
    const got = new Map<string, Uint8Array>();
    let left = sel;
    let updateCounter = 0;
    while (left.length > 0) {
      const r = await this.run(pcrReadCommand(left));
      updateCounter = r.updateCounter;
      let k = 0;
      for (const b of r.selection) for (const p of b.pcrs) got.set(`${b.hashAlg}:${p}`, r.values[k++]!);
      const next = remainingSelection(left, r.selection);
      if (r.values.length === 0 || countPcrs(next) >= countPcrs(left))
        throw new ImakitError(
          'E_TPM_RESPONSE',
          `${this.describe}: PCR_Read returned no values for the rest of the selection (is the bank allocated?)`,
          { field: 'pcrSelectionOut' },
        );
      left = next;
    }
    const values = sel.flatMap((b) =>
      b.pcrs.map((pcr) => Object.freeze({ hashAlg: b.hashAlg, pcr, value: got.get(`${b.hashAlg}:${pcr}`)! })),
    );
    return Object.freeze({ updateCounter, values: Object.freeze(values) });
  }

  /** PCR_Extend(pcr, digests) with the PCR's empty password. */
  pcrExtend(pcr: number, digests: readonly TaggedDigest[]): Promise<void> {
    return this.run(pcrExtendCommand(pcr, digests));
  }

  /** PCR_Reset(pcr) with the PCR's empty password (16 and 23 only, at locality 0). */
  pcrReset(pcr: number): Promise<void> {
    return this.run(pcrResetCommand(pcr));
  }

  /** CreatePrimary under `hierarchy` (empty hierarchy password). The key stays loaded until close/flush. */
  async createPrimary(
    hierarchy: number,
    template: TpmtPublic,
    auth: TpmAuth = passwordAuth(),
  ): Promise<LoadedKey> {
    const r: CreatePrimaryResult = await this.run(createPrimaryCommand(hierarchy, template, auth));
    this.track(r.handle);
    return Object.freeze({
      handle: r.handle,
      name: r.name,
      publicBytes: r.outPublic.tpm2b,
      public: r.outPublic.public,
    });
  }

  /** The TCG default EK of `kind`, regenerated by CreatePrimary in the endorsement hierarchy. */
  async createEk(kind: EkKind = 'rsa'): Promise<LoadedEk> {
    const k = await this.createPrimary(TPM_RH.ENDORSEMENT, ekTemplate(kind));
    return Object.freeze({ ...k, kind });
  }

  /**
   * A policy session satisfying TCG EK policy A: StartAuthSession(POLICY, sha256) then
   * PolicySecret(TPM_RH_ENDORSEMENT) with the empty endorsement password.
   */
  async ekPolicySession(): Promise<number> {
    const s = await this.run(startAuthSessionCommand(randomBytes(16), TPM_SE.POLICY, TPM_ALG.SHA256));
    this.track(s.handle);
    try {
      await this.run(policySecretCommand(TPM_RH.ENDORSEMENT, s.handle));
    } catch (e) {
      await this.flush(s.handle).catch(() => undefined);
      throw e;
    }
    return s.handle;
  }

  /** Run `fn` with an authorization for using `ek` in the USER role (a policy session when needed). */
  private async withEkAuth<T>(ek: LoadedEk, fn: (auth: TpmAuth) => Promise<T>): Promise<T> {
    if (!ekNeedsPolicy(ek.kind)) return fn(passwordAuth());
    const session = await this.ekPolicySession();
    try {
      return await fn(policyAuth(session));
    } finally {
      // continueSession was clear: the TPM flushed it with the command (or will on failure below)
      this.loaded.delete(session);
      await this.run(flushContextCommand(session)).catch(() => undefined);
    }
  }

  /** Create (not load) a key under the EK. */
  async createUnderEk(ek: LoadedEk, template: TpmtPublic): Promise<CreateResult> {
    return this.withEkAuth(ek, (auth) => this.run(createCommand(ek.handle, template, auth)));
  }

  /** Load a key (TPM2B_PRIVATE, TPM2B_PUBLIC) under the EK. */
  async loadUnderEk(ek: LoadedEk, outPrivate: Uint8Array, publicBytes: Uint8Array): Promise<LoadedKey> {
    const r: LoadResult = await this.withEkAuth(ek, (auth) =>
      this.run(loadCommand(ek.handle, outPrivate, publicBytes, auth)),
    );
    this.track(r.handle);
    const pub = await this.readPublic(r.handle);
    return Object.freeze({
      handle: r.handle,
      name: r.name,
      publicBytes: pub.outPublic.tpm2b,
      public: pub.outPublic.public,
    });
  }

  /** An attestation key under the EK (as tpm2_createak does), created and loaded. */
  async createAk(ek: LoadedEk, kind: AkKind = 'rsassa'): Promise<CreatedAk> {
    const c = await this.createUnderEk(ek, akTemplate(kind));
    const key = await this.loadUnderEk(ek, c.outPrivate, c.outPublic.tpm2b);
    return Object.freeze({ outPrivate: c.outPrivate, key });
  }

  /** ReadPublic of a loaded or persistent object. */
  readPublic(handle: number): Promise<ReadPublicResult> {
    return this.run(readPublicCommand(handle));
  }

  /** A persistent key (EK at 0x81010001, a persisted AK) as a LoadedKey (nothing to flush). */
  async persistentKey(handle: number): Promise<LoadedKey> {
    const p = await this.readPublic(handle);
    return Object.freeze({
      handle,
      name: p.name,
      publicBytes: p.outPublic.tpm2b,
      public: p.outPublic.public,
    });
  }

  /**
   * EvictControl(TPM_RH_OWNER): persist a loaded object at `persistentHandle`. The transient copy
   * stays loaded (and is flushed on close as before).
   */
  persist(objectHandle: number, persistentHandle: number): Promise<void> {
    return this.run(evictControlCommand(TPM_RH.OWNER, objectHandle, persistentHandle, passwordAuth()));
  }

  /** EvictControl(TPM_RH_OWNER) on a persistent handle: remove it. */
  evict(persistentHandle: number): Promise<void> {
    return this.run(evictControlCommand(TPM_RH.OWNER, persistentHandle, persistentHandle, passwordAuth()));
  }

  /** Quote `sel` with the AK (empty password), over `nonce`; the key's own scheme unless given. */
  quote(ak: number, nonce: Uint8Array, sel: PcrSelection, scheme?: number): Promise<AttestResult> {
    return this.run(quoteCommand(ak, nonce, sel, passwordAuth(), scheme ?? TPM_ALG.NULL));
  }

  /** Certify `object` (empty password, ADMIN role) with `signer`. */
  certify(object: number, signer: number, nonce: Uint8Array): Promise<AttestResult> {
    return this.run(certifyCommand(object, signer, nonce, passwordAuth(), passwordAuth()));
  }

  /** NV_ReadPublic. */
  nvReadPublic(index: number): Promise<NvReadPublicResult> {
    return this.run(nvReadPublicCommand(index));
  }

  /**
   * The whole contents of an NV index, read in chunks of at most TPM_PT_NV_BUFFER_MAX (or the
   * `nvChunk` option), authorized by the index's own empty password (AUTHREAD, as EK certificates
   * allow) or by `authHandle` (TPM_RH_OWNER for OWNERREAD).
   */
  async nvReadAll(index: number, authHandle: number = index): Promise<Uint8Array> {
    const pub = await this.nvReadPublic(index);
    const size = pub.nvPublic.dataSize;
    let chunk = this.opts.nvChunk;
    if (chunk === undefined) {
      const props = await this.properties(TPM_PT.NV_BUFFER_MAX);
      chunk = props.get(TPM_PT.NV_BUFFER_MAX) ?? 512;
    }
    const out = new Uint8Array(size);
    for (let off = 0; off < size;) {
      const n = Math.min(chunk, size - off);
      const part = await this.run(nvReadCommand(authHandle, index, n, off));
      if (part.length !== n)
        throw new ImakitError(
          'E_TPM_RESPONSE',
          `${this.describe}: NV_Read returned ${part.length} of ${n} bytes`,
          {
            offset: off,
            field: 'data',
          },
        );
      out.set(part, off);
      off += n;
    }
    return out;
  }

  /** ActivateCredential: the AK (empty password) and the EK (its policy when it needs one). */
  activateCredential(ak: number, ek: LoadedEk, cred: Credential): Promise<Uint8Array> {
    return this.withEkAuth(ek, (auth) =>
      this.run(activateCredentialCommand(ak, ek.handle, cred, passwordAuth(), auth)),
    );
  }
}

/** The property, handle or algorithm a capability answer ended at (the next call starts after it). */
function lastKey(d: CapabilityData): number | undefined {
  if (d.capability === 'algs') return d.algs.at(-1)?.alg;
  if (d.capability === 'handles') return d.handles.at(-1);
  if (d.capability === 'properties') return d.properties.at(-1)?.property;
  return undefined;
}

function countPcrs(sel: PcrSelection): number {
  return sel.reduce((n, b) => n + b.pcrs.length, 0);
}
