/**
 * Reference sets from packages and images: runs a reader over its inputs and feeds every record into
 * a `ReferenceSetBuilder` (issue 12 part 3). Content-hashed sources (deb, dpkg, OCI) give digests in
 * the requested algorithm; RPM headers carry one algorithm per package (FILEDIGESTALGO), so an RPM
 * whose algorithm differs from the requested one is reported, not re-hashed (its payload is not read).
 */
import { parsePlatform } from '../../core/packages/oci.ts';
import { ReferenceSetBuilder, type ReferenceSet } from '../../core/refs/reference-set.ts';
import { readDeb, expandDebInputs } from './deb.ts';
import { ByteBudget } from './decompress.ts';
import { readDpkgInstalled } from './dpkg.ts';
import type { PackageFileRecord } from './file-record.ts';
import { readOciImage } from './oci.ts';
import { expandRpmInputs, readRpm, readRpmdb, rpmdbPath } from './rpm.ts';

export type PackageSourceKind = 'deb' | 'dpkg' | 'rpm' | 'rpmdb' | 'oci';

export interface FromPackagesOptions {
  readonly algo?: string;
  readonly maxMemberBytes?: number;
  readonly maxTotalBytes?: number;
  /** OCI: the image (`NAME:TAG`) in an archive holding several */
  readonly image?: string;
  /** OCI: `os/arch[/variant]` to take from an image index (default linux and this machine's arch) */
  readonly platform?: string;
  /** called after each input (package file, image, database) */
  readonly onProgress?: (done: number, total: number, files: number, bytes: number) => void;
}

export interface FromPackagesResult {
  readonly set: ReferenceSet;
  readonly inputs: number;
  readonly files: number;
  readonly bytes: number;
  readonly signatures: number;
  /** files left out: an RPM digest in another algorithm, an installed file changed since dpkg wrote it */
  readonly skipped: readonly { path: string; reason: string }[];
}

/**
 * Build a reference set from `inputs` of one kind (`dpkg`/`rpmdb` take one root directory).
 * @throws ImakitError from the readers (E_PKG_*, E_OCI_FORMAT, E_IO_READ) naming file and member
 */
export async function referencesFromPackages(
  kind: PackageSourceKind,
  inputs: readonly string[],
  opts: FromPackagesOptions = {},
): Promise<FromPackagesResult> {
  const algo = opts.algo ?? 'sha256';
  const budget = new ByteBudget({
    ...(opts.maxMemberBytes ? { maxMemberBytes: opts.maxMemberBytes } : {}),
    ...(opts.maxTotalBytes ? { maxTotalBytes: opts.maxTotalBytes } : {}),
  });
  const b = new ReferenceSetBuilder({ hashAlgo: algo, meta: { generator: `imakit refs from-${kind}` } });
  const skipped: { path: string; reason: string }[] = [];
  let files = 0;
  let bytes = 0;
  let signatures = 0;
  const add = (r: PackageFileRecord) => {
    const d = r.digests[algo];
    if (d === undefined) {
      skipped.push({
        path: r.path,
        reason: `${r.provenance.name ?? ''}: digests are ${Object.keys(r.digests).join(',')}, not ${algo}`,
      });
      return;
    }
    b.addDigest(r.path, {
      algo,
      digest: d,
      provenance: r.provenance,
      ...(r.imaSignature ? { imaSignature: r.imaSignature } : {}),
    });
    files++;
    bytes += r.size;
    if (r.imaSignature) signatures++;
  };
  const sources: (() => AsyncGenerator<PackageFileRecord>)[] = [];
  if (kind === 'deb')
    for (const p of await expandDebInputs(inputs)) sources.push(() => readDeb(p, { algos: [algo], budget }));
  else if (kind === 'rpm') for (const p of await expandRpmInputs(inputs)) sources.push(() => readRpm(p));
  else if (kind === 'oci') {
    const platform = opts.platform !== undefined ? parsePlatform(opts.platform) : undefined;
    for (const p of inputs)
      sources.push(() =>
        readOciImage(p, {
          algos: [algo],
          budget,
          ...(opts.image !== undefined ? { image: opts.image } : {}),
          ...(platform ? { platform } : {}),
        }),
      );
  } else if (kind === 'rpmdb') sources.push(() => readRpmdb(rpmdbPath(inputs[0] ?? '/')));
  else
    sources.push(() =>
      readDpkgInstalled(inputs[0] ?? '/', {
        algos: [algo],
        onModified: (path, pkg) =>
          skipped.push({
            path,
            reason: `${pkg}: MD5 differs from dpkg's record (changed since installation)`,
          }),
      }),
    );
  let done = 0;
  for (const s of sources) {
    for await (const r of s()) add(r);
    opts.onProgress?.(++done, sources.length, files, bytes);
  }
  return Object.freeze({
    set: b.build(),
    inputs: sources.length,
    files,
    bytes,
    signatures,
    skipped: Object.freeze(skipped),
  });
}
