/**
 * Whether a reference set's bytes are signed by a trusted key: by a detached signature when one is
 * given (`refs sign`), else by a DSSE envelope's own signatures; any other unsigned form is
 * refused. One decision for every place that loads a set under trusted keys (`log verify
 * --refs-key`, the verifier's uploads).
 *
 * Does NOT establish: that the keys are the right ones (the caller chose them), nor that the set's
 * content is well-formed (decode it; the DSSE envelope parsed here is returned for that).
 */
import { ImakitError } from '../../errors.ts';
import type { PublicKey } from '../keys/keys.ts';
import { parseDsseEnvelope, verifyDsseEnvelope, type DsseEnvelope, type DsseVerdict } from './dsse.ts';
import type { RefsFileKind } from './refs-kind.ts';
import { verifyRefsSignature, type RefsSignatureVerdict } from './refs-signature.ts';

/** What verified. */
export type RefsTrustVerdict =
  | { readonly form: 'detached'; readonly verdict: RefsSignatureVerdict }
  | { readonly form: 'dsse'; readonly verdict: DsseVerdict; readonly envelope: DsseEnvelope };

/**
 * Check `bytes` (a set of form `kind`) under `keys`.
 * @param detached a detached signature over the bytes; `detachedName` names it in messages
 * @throws ImakitError E_REFS_SIGNATURE (field `signature` or `$.signatures`) when the signature
 *   does not verify, E_REFS_UNSIGNED when there is none; DSSE parse errors from parseDsseEnvelope
 */
export function checkRefsTrust(
  bytes: Uint8Array,
  kind: RefsFileKind,
  keys: readonly PublicKey[],
  detached?: { readonly bytes: Uint8Array; readonly name?: string },
): RefsTrustVerdict {
  if (detached !== undefined) {
    const verdict = verifyRefsSignature(bytes, detached.bytes, keys);
    if (verdict.status !== 'pass')
      throw new ImakitError(
        'E_REFS_SIGNATURE',
        detached.name === undefined ? verdict.detail : `${detached.name}: ${verdict.detail}`,
        { field: 'signature' },
      );
    return { form: 'detached', verdict };
  }
  if (kind === 'keylime-dsse') {
    const envelope = parseDsseEnvelope(Buffer.from(bytes).toString('utf8'));
    const verdict = verifyDsseEnvelope(envelope, keys);
    if (verdict.status === 'unsigned')
      throw new ImakitError('E_REFS_UNSIGNED', 'the DSSE envelope has no signatures');
    if (verdict.status !== 'pass')
      throw new ImakitError('E_REFS_SIGNATURE', `DSSE envelope: ${verdict.detail}`, {
        field: '$.signatures',
      });
    return { form: 'dsse', verdict, envelope };
  }
  throw new ImakitError(
    'E_REFS_UNSIGNED',
    `the ${kind} set is not signed: give its detached signature (refs sign) or a DSSE envelope`,
  );
}
