/**
 * Evaluate measurement-list entries against a reference set (issue 12 part 5): a verdict per entry
 * and a summary. Pure: the caller feeds entries (from a replay's cursor, or parsed entries), and
 * may feed only entries N onwards (incremental attestation), carrying `EvaluationState` across.
 *
 * Order of checks per entry (and how it differs from Keylime 7.14, keylime/ima/ima.py):
 *  1. a violation (all-zero template digest): refused `violation`. Keylime passes them by default
 *     without looking at the path or digest (`ignore_tomtou_errors`, peers README item 4).
 *  2. a template the evaluator cannot interpret (custom descriptor without `n-ng`, malformed
 *     fields, an fs-verity `d-ngv2` digest): refused `template-not-interpreted`. Keylime fails
 *     with a parser error for the whole list.
 *  3. `ima-buf`: a key measured onto a keyring whose digest the set allows is `learned-key` (kept
 *     in the state for later signatures unless the keyring is ignored); other buffers are
 *     `allowed-buf` when the set allows the digest for the event name.
 *  4. excludes: `allowed-exclude`, naming the pattern. Ours match the whole path; Keylime's match
 *     only its start (imported as `prefix`, and then named as such).
 *  5. a signature (`sig` field): valid under an allowed or learned key → `allowed-signature`
 *     (key id and keyring); a signature by a key the set allows that does NOT verify → refused
 *     `bad-signature` even when the digest is allowed (strict: Keylime falls back to the digest
 *     list). A signature that was not decided leaves the entry to its digest, and the verdict's
 *     detail says why: a key the set does not name ("signature not checked: unknown key"), an
 *     evmctl v1 or malformed value ("signature not interpreted"; real kernels measure v1 values),
 *     a hash or key type this runtime cannot check.
 *  6. digests: the path must be in the set (`unknown-path`) and the digest one of the path's
 *     digests of the entry's own algorithm (`digest-not-allowed`; Keylime compares hex text only,
 *     ignoring the algorithm). A path may hold digests of several algorithms: the kernel measures
 *     a file with its `security.ima` hash's algorithm when it has one, so one list mixes them.
 *     When the digest does not allow the entry, an undecided signature names the refusal: an
 *     unknown key is `unknown-key`; a signature not interpreted is only noted in the detail.
 *
 * Algorithm mismatch (E_REFS_ALGO_MISMATCH, a whole-list error, not a list full of refusals): the
 * set declares the file hash algorithm it was built for (`hashAlgo`, the kernel's `ima_hash`) and
 * NO file entry of the list (boot_aggregate and `ima-buf` aside) is measured with it — e.g. a
 * sha1 Keylime policy against a sha256 list. File entries of another algorithm in a list that has
 * some of the set's are refused one by one (the `security.ima` exceptions above). The decision
 * needs the whole list, so `summary()` throws it, naming the first such entry; `state()` carries
 * whether the algorithm was seen. A set without `hashAlgo` (learned from a mixed list) never has
 * a mismatch.
 *
 * Does NOT establish: that the entries are genuine (replay them against quoted PCRs for that),
 * that the reference set is trustworthy (verify its signature), nor that a signing key is trusted
 * beyond being named by the set.
 */
import { ImakitError } from '../../errors.ts';
import { toHex, type Endian } from '../bytes/bytes.ts';
import { HASH_ALGOS, findHashAlgo, type HashAlgo } from '../hash/hash-algo.ts';
import type { EntryCursor, UntrustedEntry } from '../ima-list/binary.ts';
import { lookupTemplate, type TemplateDescriptor } from '../ima-list/templates.ts';
import { loadPublicKey, publicFromSpki, type PublicKey } from '../keys/keys.ts';
import { Keyring, verifySignatureValue } from '../labels/ima-signature.ts';
import { parseSignatureV2 } from '../labels/signature-header.ts';
import type { DigestTable, Provenance, ReferenceSet } from './reference-set.ts';
import { compileExclude } from './reference-set.ts';

export const ALLOW_REASONS = [
  'allowed-digest',
  'allowed-signature',
  'allowed-exclude',
  'learned-key',
  'allowed-buf',
  'allowed-boot-aggregate',
] as const;
export const REFUSE_REASONS = [
  'unknown-path',
  'digest-not-allowed',
  'unknown-key',
  'bad-signature',
  'template-not-interpreted',
  'violation',
] as const;
export type AllowReason = (typeof ALLOW_REASONS)[number];
export type RefuseReason = (typeof REFUSE_REASONS)[number];
export type VerdictReason = AllowReason | RefuseReason;

/** One entry's verdict. */
export interface EntryVerdict {
  readonly index: number;
  readonly status: 'allowed' | 'refused';
  readonly reason: VerdictReason;
  /** the file path or event name ('' when the template was not interpreted) */
  readonly path: string;
  readonly template: string;
  /** the listed file/buffer digest */
  readonly algo?: string;
  readonly digest?: string;
  /** signature key id (`%08x`) and the keyring the set names for it */
  readonly keyId?: string;
  readonly keyring?: string;
  /** the exclude pattern that matched, and how it is anchored */
  readonly exclude?: string;
  readonly excludeAnchor?: 'full' | 'prefix';
  /** where the matching reference came from */
  readonly provenance?: Provenance;
  readonly detail?: string;
}

export interface EvaluationSummary {
  readonly entries: number;
  readonly allowed: number;
  readonly refused: number;
  readonly byReason: Readonly<Record<VerdictReason, number>>;
  readonly firstEntry: number;
  readonly notEstablished: readonly string[];
}

/** What carries over between incremental evaluations of one boot: keys learned from `ima-buf`. */
export interface EvaluationState {
  readonly learned: readonly { readonly keyring: string; readonly index: number; readonly der: Uint8Array }[];
  /** a file entry measured with the set's `hashAlgo` was seen (no E_REFS_ALGO_MISMATCH for this boot) */
  readonly algoSeen?: boolean;
}

export interface EvaluateOptions {
  /** byte order of the list's length words (default le) */
  readonly endian?: Endian;
  /** extra verification keys (`--key`), keyring name `cli` */
  readonly keys?: readonly PublicKey[];
  /** state from an earlier evaluation of the same boot */
  readonly state?: EvaluationState;
  /** keep a verdict for every entry (JSON output); default: refused entries only */
  readonly keepAll?: boolean;
}

/** A signature that neither allows nor refuses the entry: why (`note`), and its key when parsed. */
interface UndecidedSignature {
  readonly note: string;
  readonly keyId?: string;
  /** set when no key of the set (or learned, or `--key`) has this id: the refusal's detail */
  readonly unknownKey?: string;
}

const NOT_ESTABLISHED = Object.freeze([
  'that the entries are genuine (replay them against quoted PCR values)',
  'that the reference set itself is trustworthy (verify its signature)',
  'that a signing key is trusted beyond being named by the reference set',
]);

const TD = new TextDecoder('utf-8');

/** Evaluates entries one at a time; holds the learned keys and the running counts. */
export class RefsEvaluator {
  readonly #set: ReferenceSet;
  readonly #le: boolean;
  readonly #keepAll: boolean;
  readonly #excludes: readonly { re: RegExp; pattern: string; anchor: 'full' | 'prefix' }[];
  readonly #keyringOf = new Map<number, string>();
  #keyring: Keyring;
  readonly #baseKeys: PublicKey[];
  readonly #learned: { keyring: string; index: number; der: Uint8Array }[] = [];
  readonly #keyringDigests = new Map<string, { algo: string; hex: string; prov: number }[]>();
  readonly #bufs = new Map<string, { algo: string; hex: string; prov: number }[]>();
  readonly #ignored: Set<string>;
  readonly #counts: Record<VerdictReason, number>;
  readonly verdicts: EntryVerdict[] = [];
  #entries = 0;
  #firstEntry = -1;
  /** a file entry with the set's hashAlgo was seen (or the set declares none): no mismatch possible */
  #algoChecked = false;
  /** the first file entry of another algorithm while #algoChecked is false */
  #algoOther: { index: number; path: string; algo: string } | undefined;
  // template-name cache: entries of one list mostly share one template
  #lastName = new Uint8Array(0);
  // d-ng algorithm-prefix cache ("sha256:\0")
  #lastAlgoPrefix = new Uint8Array(0);
  #lastAlgo: HashAlgo | undefined;
  /** the set's byte lookup when it has one and nothing else (excludes, keepAll) needs the path text */
  readonly #findBytes: DigestTable['findDigestBytes'];
  readonly #fastPath: boolean;
  #tpl: TemplateDescriptor | undefined;
  #tplName = '';

  constructor(set: ReferenceSet, opts: EvaluateOptions = {}) {
    this.#set = set;
    this.#le = (opts.endian ?? 'le') === 'le';
    this.#keepAll = opts.keepAll === true;
    this.#findBytes = set.digests.findDigestBytes?.bind(set.digests);
    this.#fastPath = this.#findBytes !== undefined && !this.#keepAll && set.excludes.length === 0;
    this.#excludes = set.excludes.map((e, i) => ({
      re: compileExclude(e, `excludes[${i}]`),
      pattern: e.pattern,
      anchor: e.anchor,
    }));
    this.#baseKeys = [];
    for (const k of set.keys) {
      const pub = keyOf(k.spki, k.certificate);
      if (pub) this.#baseKeys.push(pub);
      this.#keyringOf.set(k.keyId, k.keyring);
    }
    for (const k of opts.keys ?? []) {
      this.#baseKeys.push(k);
      if (!this.#keyringOf.has(k.keyid)) this.#keyringOf.set(k.keyid, 'cli');
    }
    for (const l of opts.state?.learned ?? []) this.#learnKey(l.keyring, l.index, l.der);
    this.#algoChecked = set.hashAlgo === undefined || opts.state?.algoSeen === true;
    this.#keyring = new Keyring([...this.#baseKeys, ...this.#learnedKeys()]);
    for (const k of set.keyringDigests)
      push(this.#keyringDigests, k.keyring, { algo: k.algo, hex: toHex(k.digest), prov: k.provenance });
    for (const b of set.bufs)
      push(this.#bufs, b.name, { algo: b.algo, hex: toHex(b.digest), prov: b.provenance });
    this.#ignored = new Set(set.ignoredKeyrings);
    this.#counts = Object.fromEntries([...ALLOW_REASONS, ...REFUSE_REASONS].map((r) => [r, 0])) as Record<
      VerdictReason,
      number
    >;
  }

  #learnedPubs: PublicKey[] = [];
  #learnedKeys(): PublicKey[] {
    return this.#learnedPubs;
  }
  #learnKey(keyring: string, index: number, der: Uint8Array): boolean {
    let pub: PublicKey;
    try {
      pub = loadPublicKey(der);
    } catch {
      return false;
    }
    this.#learned.push({ keyring, index, der: Uint8Array.from(der) });
    this.#learnedPubs.push(pub);
    this.#keyringOf.set(pub.keyid, keyring);
    return true;
  }

  /** Evaluate one entry given as a replay cursor (the cursor's buffer is not kept). */
  feedCursor(c: EntryCursor): void {
    const b = c.buf;
    let same = this.#lastName.length === c.nameLen;
    for (let i = 0; same && i < c.nameLen; i++) if (this.#lastName[i] !== b[c.nameOff + i]) same = false;
    if (!same) {
      this.#lastName = b.slice(c.nameOff, c.nameOff + c.nameLen);
      this.#tplName = TD.decode(this.#lastName);
      this.#tpl = lookupTemplate(this.#tplName);
    }
    let violation = true;
    const dEnd = c.nameOff - 4;
    for (let i = c.digestOff; i < dEnd; i++)
      if (b[i] !== 0) {
        violation = false;
        break;
      }
    this.#evaluate(c.index, violation, b, c.dataOff, c.dataLen);
  }

  /** Evaluate one parsed entry. */
  feedEntry(e: UntrustedEntry): void {
    const n = new TextEncoder().encode(e.templateName);
    let same = this.#lastName.length === n.length;
    for (let i = 0; same && i < n.length; i++) if (this.#lastName[i] !== n[i]) same = false;
    if (!same) {
      this.#lastName = n;
      this.#tplName = e.templateName;
      this.#tpl = lookupTemplate(e.templateName);
    }
    this.#evaluate(
      e.index,
      e.digest.every((x) => x === 0),
      e.templateData,
      0,
      e.templateData.length,
    );
  }

  #sameAlgoPrefix(b: Uint8Array, p: number, l: number): boolean {
    const q = this.#lastAlgoPrefix;
    if (q.length === 0 || l <= q.length) return false;
    for (let i = 0; i < q.length; i++) if (b[p + i] !== q[i]) return false;
    return l - q.length === this.#lastAlgo!.size;
  }

  #u32(b: Uint8Array, p: number): number {
    return this.#le
      ? (b[p]! | (b[p + 1]! << 8) | (b[p + 2]! << 16) | (b[p + 3]! << 24)) >>> 0
      : ((b[p]! << 24) | (b[p + 1]! << 16) | (b[p + 2]! << 8) | b[p + 3]!) >>> 0;
  }

  #notInterpreted(index: number, detail: string, path: string): void {
    this.#record({
      index,
      status: 'refused',
      reason: 'template-not-interpreted',
      path,
      template: this.#tplName,
      detail,
    });
  }

  #record(v: EntryVerdict): void {
    this.#counts[v.reason]++;
    if (this.#keepAll || v.status === 'refused') this.verdicts.push(Object.freeze(v));
  }

  #evaluate(index: number, violation: boolean, b: Uint8Array, off: number, len: number): void {
    this.#entries++;
    if (this.#firstEntry < 0) this.#firstEntry = index;
    const template = this.#tplName;
    if (violation) {
      this.#record({
        index,
        status: 'refused',
        reason: 'violation',
        path: '',
        template,
        detail: 'ToMToU/open-writers violation: the measurement does not describe the file',
      });
      return;
    }
    const tpl = this.#tpl;
    if (!tpl) return this.#notInterpreted(index, `unknown template '${template}'`, '');
    // locate d / d-ng / d-ngv2, n / n-ng, sig, buf in the field layout
    let algo: HashAlgo | undefined;
    let dOff = 0;
    let dLen = 0;
    let nOff = 0;
    let nLen = -1;
    let sigOff = 0;
    let sigLen = 0;
    let bufOff = 0;
    let bufLen = -1;
    let verity = false;
    if (tpl.legacy) {
      if (len < 24) return this.#notInterpreted(index, 'legacy entry shorter than its digest', '');
      algo = HASH_ALGOS[2];
      dOff = off;
      dLen = 20;
      nOff = off + 24;
      nLen = len - 24;
    } else {
      let p = off;
      const end = off + len;
      const fields = tpl.fields;
      // indexed: an array iterator per entry was most of the evaluation's garbage (heap profile)
      for (let fi = 0; fi < fields.length; fi++) {
        const f = fields[fi]!;
        if (end - p < 4) return this.#notInterpreted(index, `field ${f}: missing length word`, '');
        const l = this.#u32(b, p);
        p += 4;
        if (l > end - p) return this.#notInterpreted(index, `field ${f}: length ${l} runs past the data`, '');
        if (f === 'd-ng' && this.#sameAlgoPrefix(b, p, l)) {
          // the same "algo:\0" as the last entry: no text decoded
          algo = this.#lastAlgo;
          dOff = p + this.#lastAlgoPrefix.length;
          dLen = l - this.#lastAlgoPrefix.length;
        } else if (f === 'd-ng' || f === 'd-ngv2') {
          // "[type:]algo:\0digest"
          let z = p;
          while (z < p + l && b[z] !== 0) z++;
          if (z >= p + l) return this.#notInterpreted(index, `field ${f}: no NUL after the algorithm`, '');
          let text = TD.decode(b.subarray(p, z));
          if (f === 'd-ngv2') {
            const colon = text.indexOf(':');
            const type = text.slice(0, colon);
            if (type === 'verity') verity = true;
            else if (type !== 'ima')
              return this.#notInterpreted(index, `field d-ngv2: digest type '${type}'`, '');
            text = text.slice(colon + 1);
          }
          if (!text.endsWith(':'))
            return this.#notInterpreted(index, `field ${f}: no ':' after the algorithm`, '');
          algo = findHashAlgo(text.slice(0, -1));
          if (!algo)
            return this.#notInterpreted(index, `field ${f}: unknown algorithm '${text.slice(0, -1)}'`, '');
          dOff = z + 1;
          dLen = p + l - dOff;
          if (dLen !== algo.size)
            return this.#notInterpreted(index, `field ${f}: ${algo.name} digest of ${dLen} bytes`, '');
          if (f === 'd-ng') {
            this.#lastAlgoPrefix = b.slice(p, dOff);
            this.#lastAlgo = algo;
          }
        } else if (f === 'n-ng') {
          nOff = p;
          nLen = l;
        } else if (f === 'sig') {
          sigOff = p;
          sigLen = l;
        } else if (f === 'buf') {
          bufOff = p;
          bufLen = l;
        }
        p += l;
      }
      if (p !== end) return this.#notInterpreted(index, 'template data longer than its fields', '');
    }
    if (!algo || nLen < 0) return this.#notInterpreted(index, 'no digest or name field', '');
    // names carry their terminating NUL
    const nEnd = nLen > 0 && b[nOff + nLen - 1] === 0 ? nOff + nLen - 1 : nOff + nLen;
    if (
      this.#fastPath &&
      this.#algoChecked &&
      sigLen === 0 &&
      bufLen < 0 &&
      !verity &&
      !isBootAggregate(b, nOff, nEnd) &&
      this.#findBytes!(b, nOff, nEnd - nOff, algo.id, b, dOff, dLen) >= 0
    ) {
      // the common case: the path's bytes are looked up in the set's index, no string is made
      this.#counts['allowed-digest']++;
      return;
    }
    this.#evaluateDecoded(
      index,
      template,
      algo,
      verity,
      b,
      dOff,
      dLen,
      nOff,
      nEnd,
      sigOff,
      sigLen,
      bufOff,
      bufLen,
    );
  }

  /**
   * Every entry the fast path did not allow, with the path decoded. A method of its own: its
   * closures make V8 allocate a context on entry, which in #evaluate cost every entry ~60 bytes
   * of garbage (heap profile).
   */
  #evaluateDecoded(
    index: number,
    template: string,
    algo: HashAlgo,
    verity: boolean,
    b: Uint8Array,
    dOff: number,
    dLen: number,
    nOff: number,
    nEnd: number,
    sigOff: number,
    sigLen: number,
    bufOff: number,
    bufLen: number,
  ): void {
    const path = TD.decode(b.subarray(nOff, nEnd));
    if (verity)
      return this.#notInterpreted(index, 'fs-verity digest (reference sets hold file digests)', path);
    const digest = b.subarray(dOff, dOff + dLen);

    if (bufLen >= 0)
      return this.#evaluateBuf(index, template, path, algo, digest, b.subarray(bufOff, bufOff + bufLen));

    if (path === 'boot_aggregate') return this.#evaluateBoot(index, template, algo, digest);

    if (!this.#algoChecked) {
      if (this.#set.hashAlgo === algo.name) this.#algoChecked = true;
      else this.#algoOther ??= { index, path, algo: algo.name };
    }

    for (const x of this.#excludes)
      if (x.re.test(path)) {
        this.#record({
          index,
          status: 'allowed',
          reason: 'allowed-exclude',
          path,
          template,
          exclude: x.pattern,
          excludeAnchor: x.anchor,
        });
        return;
      }

    // a signature that decided nothing: the digest decides, and the verdict says why it did not
    let sigOpen: UndecidedSignature | undefined;
    if (sigLen > 0) {
      const r = this.#checkSignature(
        index,
        template,
        path,
        algo,
        digest,
        b.subarray(sigOff, sigOff + sigLen),
      );
      if ('status' in r) return this.#record(r);
      sigOpen = r;
    }
    const sigNote = sigOpen?.note;
    const unknownKey = (detail: string): EntryVerdict => ({
      index,
      status: 'refused',
      reason: 'unknown-key',
      path,
      template,
      algo: algo.name,
      digest: toHex(digest),
      keyId: sigOpen!.keyId!,
      detail,
    });

    if (!this.#keepAll) {
      // the common case, without allocating: the path has this digest
      if (this.#set.digests.findDigest(path, algo.name, b, dOff, dLen) >= 0) {
        this.#counts['allowed-digest']++;
        return;
      }
    }
    const refs = this.#set.digests.get(path);
    if (!refs) {
      if (sigOpen?.unknownKey) return this.#record(unknownKey(sigOpen.unknownKey));
      return this.#record({
        index,
        status: 'refused',
        reason: 'unknown-path',
        path,
        template,
        algo: algo.name,
        digest: toHex(digest),
        ...(sigNote !== undefined ? { detail: sigNote } : {}),
      });
    }
    for (const r of refs)
      if (r.algo === algo.name && sameBytes(r.digest, digest)) {
        if (!this.#keepAll) {
          this.#counts['allowed-digest']++;
          return;
        }
        return this.#record({
          index,
          status: 'allowed',
          reason: 'allowed-digest',
          path,
          template,
          algo: algo.name,
          digest: toHex(digest),
          provenance: this.#set.provenances[r.provenance],
          ...(sigOpen?.keyId !== undefined ? { keyId: sigOpen.keyId } : {}),
          ...(sigNote !== undefined ? { detail: sigNote } : {}),
        });
      }
    const allowed = `allowed: ${refs.map((r) => `${r.algo}:${toHex(r.digest)}`).join(', ')}`;
    if (sigOpen?.unknownKey) return this.#record(unknownKey(`${sigOpen.unknownKey}; digest ${allowed}`));
    this.#record({
      index,
      status: 'refused',
      reason: 'digest-not-allowed',
      path,
      template,
      algo: algo.name,
      digest: toHex(digest),
      detail: sigNote !== undefined ? `${allowed}; ${sigNote}` : allowed,
    });
  }

  #checkSignature(
    index: number,
    template: string,
    path: string,
    algo: HashAlgo,
    digest: Uint8Array,
    sig: Uint8Array,
  ): EntryVerdict | UndecidedSignature {
    const base = { index, path, template, algo: algo.name, digest: toHex(digest) };
    let parsed;
    try {
      parsed = parseSignatureV2(sig);
    } catch (e) {
      // evmctl v1 values (0x03 0x01: no key of the set can name them) are measured by real kernels
      if (sig.length >= 2 && sig[0] === 0x03 && sig[1] === 0x01)
        return { note: 'signature not interpreted: evmctl v1 signature' };
      return { note: `signature not interpreted: ${(e as Error).message}` };
    }
    const keyId = parsed.keyid.toString(16).padStart(8, '0');
    const keyring = this.#keyringOf.get(parsed.keyid);
    let otherAlgo = false;
    const v = verifySignatureValue(
      parsed,
      (a) => {
        otherAlgo = a.id !== algo.id;
        if (otherAlgo)
          throw new ImakitError(
            'E_HASH_UNSUPPORTED',
            `signature uses ${a.name}, the entry records ${algo.name}`,
          );
        return digest;
      },
      this.#keyring,
    );
    if (v.status === 'pass')
      return {
        ...base,
        status: 'allowed',
        reason: 'allowed-signature',
        keyId,
        ...(keyring ? { keyring } : {}),
      };
    if (v.status === 'unknown-key')
      return { keyId, note: `signature not checked: unknown key ${keyId}`, unknownKey: v.detail };
    // nothing decided (a hash or key type this runtime cannot use): the digest decides; a known
    // key's signature over another algorithm than the entry's cannot be over this digest: refused
    if (v.status === 'unsupported' && !otherAlgo)
      return { keyId, note: `signature not checked: ${v.detail}` };
    return {
      ...base,
      status: 'refused',
      reason: 'bad-signature',
      keyId,
      ...(keyring ? { keyring } : {}),
      detail: v.detail,
    };
  }

  #evaluateBoot(index: number, template: string, algo: HashAlgo, digest: Uint8Array): void {
    const base = { index, path: 'boot_aggregate', template, algo: algo.name, digest: toHex(digest) };
    const refs = this.#set.bootAggregates;
    if (refs.length === 0) {
      // a set without boot_aggregate values may still exclude it (Keylime policies often do)
      for (const x of this.#excludes)
        if (x.re.test('boot_aggregate'))
          return this.#record({
            ...base,
            status: 'allowed',
            reason: 'allowed-exclude',
            exclude: x.pattern,
            excludeAnchor: x.anchor,
          });
      return this.#record({
        ...base,
        status: 'refused',
        reason: 'unknown-path',
        detail: 'the reference set has no boot_aggregate value',
      });
    }
    const m = refs.find((r) => r.algo === algo.name && sameBytes(r.digest, digest));
    if (m)
      return this.#record({
        ...base,
        status: 'allowed',
        reason: 'allowed-boot-aggregate',
        provenance: this.#set.provenances[m.provenance],
      });
    this.#record({
      ...base,
      status: 'refused',
      reason: 'digest-not-allowed',
      detail: `allowed: ${refs.map((r) => `${r.algo}:${toHex(r.digest)}`).join(', ')}`,
    });
  }

  #evaluateBuf(
    index: number,
    template: string,
    name: string,
    algo: HashAlgo,
    digest: Uint8Array,
    buf: Uint8Array,
  ): void {
    const hex = toHex(digest);
    const base = { index, path: name, template, algo: algo.name, digest: hex };
    const kd = this.#keyringDigests.get(name)?.find((x) => x.algo === algo.name && x.hex === hex);
    if (kd) {
      const ignored = this.#ignored.has(name) || this.#ignored.has('*');
      if (!ignored && this.#learnKey(name, index, buf)) {
        this.#keyring = new Keyring([...this.#baseKeys, ...this.#learnedPubs]);
        return this.#record({
          ...base,
          status: 'allowed',
          reason: 'learned-key',
          keyring: name,
          keyId: this.#learnedPubs.at(-1)!.keyid.toString(16).padStart(8, '0'),
          provenance: this.#set.provenances[kd.prov],
        });
      }
      return this.#record({
        ...base,
        status: 'allowed',
        reason: 'allowed-buf',
        keyring: name,
        provenance: this.#set.provenances[kd.prov],
        detail: ignored ? 'keyring ignored: key not learned' : 'not a key imakit can load: not learned',
      });
    }
    const bd = this.#bufs.get(name)?.find((x) => x.algo === algo.name && x.hex === hex);
    if (bd)
      return this.#record({
        ...base,
        status: 'allowed',
        reason: 'allowed-buf',
        provenance: this.#set.provenances[bd.prov],
      });
    const known = this.#keyringDigests.has(name) || this.#bufs.has(name);
    this.#record({
      ...base,
      status: 'refused',
      reason: known ? 'digest-not-allowed' : 'unknown-path',
      detail: known
        ? 'buffer digest not allowed for this name'
        : 'no ima-buf or keyring reference for this name',
    });
  }

  /** @throws ImakitError E_REFS_ALGO_MISMATCH when no file entry used the set's hashAlgo (see the file's doc) */
  summary(): EvaluationSummary {
    const o = this.#algoOther;
    if (!this.#algoChecked && o !== undefined)
      throw new ImakitError(
        'E_REFS_ALGO_MISMATCH',
        `the reference set holds ${this.#set.hashAlgo} digests, the list measures no file with it (entry ${o.index}, ${o.path}: ${o.algo})`,
        { entry: o.index, path: o.path },
      );
    const refused = REFUSE_REASONS.reduce((n, r) => n + this.#counts[r], 0);
    return Object.freeze({
      entries: this.#entries,
      allowed: this.#entries - refused,
      refused,
      byReason: Object.freeze({ ...this.#counts }),
      firstEntry: this.#firstEntry < 0 ? 0 : this.#firstEntry,
      notEstablished: NOT_ESTABLISHED,
    });
  }

  state(): EvaluationState {
    return Object.freeze({
      learned: Object.freeze(this.#learned.map((l) => Object.freeze({ ...l }))),
      ...(this.#algoChecked && this.#set.hashAlgo !== undefined ? { algoSeen: true } : {}),
    });
  }
}

export interface Evaluation {
  readonly summary: EvaluationSummary;
  /** refused entries, or every entry with `keepAll` */
  readonly verdicts: readonly EntryVerdict[];
  readonly state: EvaluationState;
}

/**
 * Evaluate parsed entries (any subset: pass entries N onwards with the state of 0..N-1).
 * @throws ImakitError E_REFS_ALGO_MISMATCH; E_REFS_PATTERN for an exclude that does not compile
 */
export function evaluateEntries(
  entries: Iterable<UntrustedEntry>,
  set: ReferenceSet,
  opts: EvaluateOptions = {},
): Evaluation {
  const ev = new RefsEvaluator(set, opts);
  for (const e of entries) ev.feedEntry(e);
  return Object.freeze({
    summary: ev.summary(),
    verdicts: Object.freeze(ev.verdicts.slice()),
    state: ev.state(),
  });
}

function keyOf(spki: Uint8Array | undefined, cert: Uint8Array | undefined): PublicKey | undefined {
  try {
    if (cert) {
      return loadPublicKey(cert);
    }
    if (spki) return publicFromSpki(spki);
  } catch {
    return undefined;
  }
  return undefined;
}

function push<K, V>(m: Map<K, V[]>, k: K, v: V): void {
  const l = m.get(k);
  if (l) l.push(v);
  else m.set(k, [v]);
}

const BOOT_AGGREGATE = new TextEncoder().encode('boot_aggregate');

function isBootAggregate(b: Uint8Array, from: number, to: number): boolean {
  if (to - from !== BOOT_AGGREGATE.length) return false;
  for (let i = 0; i < BOOT_AGGREGATE.length; i++) if (b[from + i] !== BOOT_AGGREGATE[i]) return false;
  return true;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
