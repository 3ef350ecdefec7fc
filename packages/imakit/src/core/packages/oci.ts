/**
 * OCI image layout (`oci-layout`, `index.json`, `blobs/<alg>/<hex>`), manifests and configs
 * (opencontainers/image-spec `image-layout.md`, `manifest.md`, `layer.md`), `docker save`'s
 * `manifest.json`, and the whiteout rules for applying layers: `.wh.<name>` deletes `<name>` from
 * lower layers, `.wh..wh..opq` empties its directory of lower-layer content; any other `.wh.` name is
 * refused (layer.md "Whiteouts").
 */
import { CodecError, ImakitError } from '../../errors.ts';

export const MAX_OCI_JSON_BYTES = 4 * 1024 * 1024;
export const MAX_OCI_LAYERS = 1024;

export const MEDIA = Object.freeze({
  INDEX: 'application/vnd.oci.image.index.v1+json',
  MANIFEST: 'application/vnd.oci.image.manifest.v1+json',
  DOCKER_MANIFEST: 'application/vnd.docker.distribution.manifest.v2+json',
  DOCKER_LIST: 'application/vnd.docker.distribution.manifest.list.v2+json',
});

export type LayerCompression = 'none' | 'gzip' | 'zstd';

/** An image's platform (image-index.md `platform`): `linux/amd64`, `linux/arm64/v8`. */
export interface Platform {
  readonly os: string;
  readonly architecture: string;
  readonly variant?: string;
}

export interface Descriptor {
  readonly mediaType: string;
  readonly digest: string;
  readonly size: number;
  readonly annotations?: Readonly<Record<string, string>>;
  /** only in an image index's `manifests` */
  readonly platform?: Platform;
}

function fail(what: string, msg: string): CodecError {
  return new CodecError('E_OCI_FORMAT', msg, { offset: 0, member: what });
}

function parseJson(bytes: Uint8Array, what: string): unknown {
  if (bytes.length > MAX_OCI_JSON_BYTES)
    throw new CodecError('E_PKG_TOO_LARGE', `${bytes.length} bytes of JSON over ${MAX_OCI_JSON_BYTES}`, {
      offset: 0,
      member: what,
    });
  try {
    return JSON.parse(Buffer.from(bytes).toString('utf8')) as unknown;
  } catch (e) {
    throw fail(what, `not JSON: ${(e as Error).message}`);
  }
}

function obj(v: unknown, what: string): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw fail(what, 'expected a JSON object');
  return v as Record<string, unknown>;
}

const DIGEST_RE = /^sha256:[0-9a-f]{64}$|^sha512:[0-9a-f]{128}$/;

function descriptor(v: unknown, what: string): Descriptor {
  const o = obj(v, what);
  if (typeof o.mediaType !== 'string') throw fail(what, 'descriptor without mediaType');
  if (typeof o.digest !== 'string' || !DIGEST_RE.test(o.digest))
    throw fail(what, `descriptor digest '${String(o.digest)}' is not sha256:/sha512:<hex>`);
  if (typeof o.size !== 'number' || !Number.isSafeInteger(o.size) || o.size < 0)
    throw fail(what, 'descriptor size is not a non-negative integer');
  const ann = o.annotations === undefined ? undefined : obj(o.annotations, what);
  if (ann && !Object.values(ann).every((x) => typeof x === 'string'))
    throw fail(what, 'descriptor annotations must be strings');
  let platform: Platform | undefined;
  if (o.platform !== undefined) {
    const p = obj(o.platform, `${what} platform`);
    if (typeof p.os !== 'string' || typeof p.architecture !== 'string')
      throw fail(what, 'platform without os and architecture strings');
    if (p.variant !== undefined && typeof p.variant !== 'string')
      throw fail(what, 'platform variant is not a string');
    platform = Object.freeze({
      os: p.os,
      architecture: p.architecture,
      ...(p.variant !== undefined ? { variant: p.variant } : {}),
    });
  }
  return Object.freeze({
    mediaType: o.mediaType,
    digest: o.digest,
    size: o.size,
    ...(ann ? { annotations: Object.freeze(ann as Record<string, string>) } : {}),
    ...(platform ? { platform } : {}),
  });
}

/** `index.json` of a layout: its manifest descriptors. */
export function parseOciIndex(bytes: Uint8Array, what = 'index.json'): Descriptor[] {
  const o = obj(parseJson(bytes, what), what);
  if (o.schemaVersion !== 2) throw fail(what, `schemaVersion ${String(o.schemaVersion)} is not 2`);
  if (!Array.isArray(o.manifests)) throw fail(what, 'no manifests array');
  if (o.manifests.length > MAX_OCI_LAYERS)
    throw new CodecError('E_PKG_TOO_LARGE', `${o.manifests.length} manifests over ${MAX_OCI_LAYERS}`, {
      offset: 0,
      member: what,
    });
  return o.manifests.map((m, i) => descriptor(m, `${what} manifests[${i}]`));
}

export interface OciManifest {
  readonly config: Descriptor;
  readonly layers: readonly Descriptor[];
}

/** An image manifest (OCI or Docker v2 schema 2). An index/list is reported as such by `mediaType`. */
export function parseOciManifest(bytes: Uint8Array, what: string): OciManifest & { mediaType: string } {
  const o = obj(parseJson(bytes, what), what);
  if (o.schemaVersion !== 2) throw fail(what, `schemaVersion ${String(o.schemaVersion)} is not 2`);
  const mediaType =
    typeof o.mediaType === 'string' ? o.mediaType : Array.isArray(o.manifests) ? MEDIA.INDEX : MEDIA.MANIFEST;
  if (mediaType === MEDIA.INDEX || mediaType === MEDIA.DOCKER_LIST) {
    if (!Array.isArray(o.manifests)) throw fail(what, 'image index without a manifests array');
    if (o.manifests.length > MAX_OCI_LAYERS)
      throw new CodecError('E_PKG_TOO_LARGE', `${o.manifests.length} manifests over ${MAX_OCI_LAYERS}`, {
        offset: 0,
        member: what,
      });
    return {
      mediaType,
      config: descriptor({ mediaType, digest: `sha256:${'0'.repeat(64)}`, size: 0 }, what),
      layers: o.manifests.map((m, i) => descriptor(m, `${what} manifests[${i}]`)),
    };
  }
  if (!Array.isArray(o.layers)) throw fail(what, 'manifest without layers');
  if (o.layers.length > MAX_OCI_LAYERS)
    throw new CodecError('E_PKG_TOO_LARGE', `${o.layers.length} layers over ${MAX_OCI_LAYERS}`, {
      offset: 0,
      member: what,
    });
  return {
    mediaType,
    config: descriptor(o.config, `${what} config`),
    layers: o.layers.map((l, i) => descriptor(l, `${what} layers[${i}]`)),
  };
}

/** Compression of a layer by media type. @throws E_OCI_FORMAT for non-layer or unknown types */
export function layerCompression(mediaType: string, what: string): LayerCompression {
  switch (mediaType) {
    case 'application/vnd.oci.image.layer.v1.tar':
    case 'application/vnd.oci.image.layer.nondistributable.v1.tar':
      return 'none';
    case 'application/vnd.oci.image.layer.v1.tar+gzip':
    case 'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip':
    case 'application/vnd.docker.image.rootfs.diff.tar.gzip':
    case 'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip':
      return 'gzip';
    case 'application/vnd.oci.image.layer.v1.tar+zstd':
    case 'application/vnd.oci.image.layer.nondistributable.v1.tar+zstd':
      return 'zstd';
    default:
      throw fail(what, `unsupported layer media type '${mediaType}'`);
  }
}

/** `docker save`'s manifest.json: per image its config and layer tar paths inside the archive. */
export interface DockerSaveImage {
  readonly config: string;
  readonly repoTags: readonly string[];
  readonly layers: readonly string[];
}

export function parseDockerSaveManifest(bytes: Uint8Array, what = 'manifest.json'): DockerSaveImage[] {
  const v = parseJson(bytes, what);
  if (!Array.isArray(v)) throw fail(what, 'expected a JSON array');
  return v.map((x, i) => {
    const o = obj(x, `${what}[${i}]`);
    if (
      typeof o.Config !== 'string' ||
      !Array.isArray(o.Layers) ||
      !o.Layers.every((l) => typeof l === 'string')
    )
      throw fail(what, `entry ${i} lacks Config or Layers`);
    if (o.Layers.length > MAX_OCI_LAYERS)
      throw new CodecError('E_PKG_TOO_LARGE', `${o.Layers.length} layers over ${MAX_OCI_LAYERS}`, {
        offset: 0,
        member: what,
      });
    const tags = Array.isArray(o.RepoTags)
      ? o.RepoTags.filter((t): t is string => typeof t === 'string')
      : [];
    return Object.freeze({ config: o.Config, repoTags: tags, layers: o.Layers as string[] });
  });
}

export type Whiteout = { kind: 'opaque'; dir: string } | { kind: 'delete'; path: string } | undefined;

/**
 * Classify a layer entry path (absolute, normalized): a whiteout of `path`, an opaque marker for its
 * directory, or nothing. `.wh.` names that are neither are refused, as layer.md requires.
 */
export function whiteoutOf(path: string, what: string): Whiteout {
  const slash = path.lastIndexOf('/');
  const dir = path.slice(0, slash) || '/';
  const base = path.slice(slash + 1);
  if (!base.startsWith('.wh.')) return undefined;
  if (base === '.wh..wh..opq') return { kind: 'opaque', dir };
  const target = base.slice(4);
  if (target === '' || target.startsWith('.wh.') || target === '.' || target === '..')
    throw fail(what, `invalid whiteout name '${path}'`);
  return { kind: 'delete', path: dir === '/' ? `/${target}` : `${dir}/${target}` };
}

/** Node's `process.arch` as an OCI architecture (image-index.md, Go's GOARCH names). */
export function ociArchitecture(nodeArch: string): string {
  const map: Record<string, string> = {
    x64: 'amd64',
    ia32: '386',
    ppc64: 'ppc64le',
    arm: 'arm',
    arm64: 'arm64',
  };
  return map[nodeArch] ?? nodeArch;
}

/**
 * Parse `os/arch[/variant]` (`linux/amd64`, `linux/arm64/v8`).
 * @throws ImakitError E_USAGE for another shape
 */
export function parsePlatform(text: string): Platform {
  const parts = text.split('/');
  if (parts.length < 2 || parts.length > 3 || parts.some((p) => !/^[A-Za-z0-9_.-]+$/.test(p)))
    throw new ImakitError('E_USAGE', `platform '${text}' is not os/architecture[/variant]`);
  return Object.freeze({
    os: parts[0]!,
    architecture: parts[1]!,
    ...(parts[2] !== undefined ? { variant: parts[2] } : {}),
  });
}

/** `os/arch[/variant]` of a platform. */
export function platformText(p: Platform): string {
  return [p.os, p.architecture, ...(p.variant !== undefined ? [p.variant] : [])].join('/');
}

/**
 * The one manifest of an image index for `want` (os and architecture equal; the variant too when
 * `want` names one). Attestation manifests (`unknown/unknown`, BuildKit) never match.
 * @throws ImakitError E_OCI_SELECT listing the platforms the index has
 */
export function selectPlatform(manifests: readonly Descriptor[], want: Platform, what: string): Descriptor {
  const hits = manifests.filter(
    (d) =>
      d.platform !== undefined &&
      d.platform.os === want.os &&
      d.platform.architecture === want.architecture &&
      (want.variant === undefined || d.platform.variant === want.variant),
  );
  if (hits.length === 1) return hits[0]!;
  // an index without platforms (a plain OCI layout's index.json with one image) has one choice
  if (hits.length === 0 && manifests.length === 1 && manifests[0]!.platform === undefined)
    return manifests[0]!;
  const have = manifests.map((d) => (d.platform ? platformText(d.platform) : '(no platform)')).join(', ');
  throw new ImakitError(
    'E_OCI_SELECT',
    hits.length === 0
      ? `no manifest for ${platformText(want)} (the index has: ${have || 'none'}); choose with --platform`
      : `${hits.length} manifests for ${platformText(want)}: name a variant (${have})`,
    { path: what },
  );
}

/**
 * `rootfs.diff_ids` of an image config (config.md): the sha256 of each layer's uncompressed tar, in
 * layer order. Undefined when the config has none (the check is then the blob digests alone).
 * @throws CodecError E_OCI_FORMAT
 */
export function parseConfigDiffIds(bytes: Uint8Array, what: string): string[] | undefined {
  const o = obj(parseJson(bytes, what), what);
  if (o.rootfs === undefined) return undefined;
  const r = obj(o.rootfs, `${what} rootfs`);
  if (r.diff_ids === undefined) return undefined;
  if (!Array.isArray(r.diff_ids) || !r.diff_ids.every((d) => typeof d === 'string' && DIGEST_RE.test(d)))
    throw fail(what, 'rootfs.diff_ids is not a list of sha256:/sha512: digests');
  return r.diff_ids as string[];
}

/** The algorithm and hex of a `sha256:<hex>` digest, or of a blob path `…/sha256/<hex>`, `<hex>.json`. */
export function digestOfName(name: string): { algo: string; hex: string } | undefined {
  const m =
    /(?:^|\/)(sha256|sha512)[:/]([0-9a-f]{64}|[0-9a-f]{128})$/.exec(name) ??
    /(?:^|\/)([0-9a-f]{64})(?:\.json)?$/.exec(name);
  if (!m) return undefined;
  return m[2] !== undefined ? { algo: m[1]!, hex: m[2] } : { algo: 'sha256', hex: m[1]! };
}
