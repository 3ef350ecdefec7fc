/**
 * References from an OCI image: an image layout directory (`oci-layout`, `index.json`, `blobs/`) or
 * a `docker save` tarball (its `manifest.json`, or the OCI layout newer Docker writes inside it).
 * Layers are applied in manifest order (layer.md): an entry replaces what lower layers had at its
 * path, `.wh.<name>` deletes `<name>` and everything under it, `.wh..wh..opq` hides the lower layers'
 * content of its directory. Regular files are hashed as they stream by; `SCHILY.xattr.security.ima`
 * pax records are kept. The flattened view is yielded at the end, sorted by path.
 */
import { existsSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import {
  digestOfName,
  layerCompression,
  ociArchitecture,
  parseConfigDiffIds,
  selectPlatform,
  type Descriptor,
  type Platform,
  parseDockerSaveManifest,
  parseOciIndex,
  parseOciManifest,
  whiteoutOf,
  MEDIA,
  MAX_OCI_JSON_BYTES,
} from '../../core/packages/oci.ts';
import { walkTar } from '../../core/packages/tar-walk.ts';
import { createHasher } from '../../core/hash/hash-algo.ts';
import type { Provenance } from '../../core/refs/reference-set.ts';
import { fromSystemError, ImakitError } from '../../errors.ts';
import { ByteBudget, compressionOfMagic, decompress, type Compression } from './decompress.ts';
import { hashStream, type PackageFileRecord, readRange, type ReaderOptions } from './file-record.ts';
import { readBoundedFile } from '../fs/bounded-read.ts';

export interface OciReaderOptions extends ReaderOptions, ImageSelection {
  readonly budget?: ByteBudget;
}

interface BlobSource {
  read(name: string): AsyncIterable<Uint8Array>;
  json(name: string): Promise<Uint8Array>;
  has(name: string): boolean;
}

async function dirSource(dir: string): Promise<BlobSource> {
  return {
    read: (name) => readRange(join(dir, name)),
    // bounded: a FIFO or device reports size 0, so a size check alone would read it until EOF
    json: (name) =>
      Promise.resolve(readBoundedFile(join(dir, name), 'oci-json', { cap: MAX_OCI_JSON_BYTES })),
    has: (name) => existsSync(join(dir, name)),
  };
}

/** An uncompressed tar read in place: one pass to index its members, then ranges. */
async function tarSource(tar: string): Promise<BlobSource> {
  const index = new Map<string, { start: number; size: number }>();
  const budget = new ByteBudget({ maxMemberBytes: Number.MAX_SAFE_INTEGER });
  for await (const { entry } of walkTar(decompress('none', readRange(tar), budget, tar, 'archive'), {
    member: tar,
  })) {
    if (entry.type === 'file') index.set(entry.path.slice(1), { start: entry.dataOffset, size: entry.size });
  }
  const get = (name: string) => {
    const m = index.get(name.replace(/^\.?\//, ''));
    if (!m)
      throw new ImakitError('E_OCI_FORMAT', 'member missing from the archive', { path: tar, member: name });
    return m;
  };
  return {
    read: (name) => {
      const m = get(name);
      return readRange(tar, m.start, m.size);
    },
    json: async (name) => {
      const m = get(name);
      if (m.size > MAX_OCI_JSON_BYTES)
        throw new ImakitError('E_PKG_TOO_LARGE', `over ${MAX_OCI_JSON_BYTES} bytes`, {
          path: tar,
          member: name,
        });
      const parts: Uint8Array[] = [];
      for await (const c of readRange(tar, m.start, m.size)) parts.push(c);
      return Buffer.concat(parts);
    },
    has: (name) => index.has(name.replace(/^\.?\//, '')),
  };
}

interface Layer {
  readonly name: string;
  /** names the layer in errors and provenance: its digest, or its path in a docker save archive */
  readonly digest: string;
  readonly compression: Compression | 'sniff';
  /** the blob's digest and size (OCI descriptor, or a docker save blob path) */
  readonly blob?: { readonly algo: string; readonly hex: string; readonly size?: number };
  /** sha256 of the uncompressed tar (the config's rootfs.diff_ids) */
  readonly diffId?: { readonly algo: string; readonly hex: string };
}

function blobName(digest: string): string {
  const [alg, hex] = digest.split(':');
  return `blobs/${alg}/${hex}`;
}

function splitDigest(d: string): { algo: string; hex: string } {
  const [algo, hex] = d.split(':') as [string, string];
  return { algo, hex };
}

function hexOf(algo: string, b: Uint8Array): string {
  const h = createHasher(algo);
  h.update(b);
  return Buffer.from(h.digest()).toString('hex');
}

/** A blob's bytes must hash to the digest that names it (image-spec descriptor.md "Digests"). */
function checkBlob(
  bytes: Uint8Array,
  want: { algo: string; hex: string },
  input: string,
  member: string,
): void {
  const got = hexOf(want.algo, bytes);
  if (got !== want.hex)
    throw new ImakitError('E_PKG_DIGEST_MISMATCH', `${want.algo} is ${got}, the blob is named ${want.hex}`, {
      path: input,
      member,
    });
}

/** Fetch a JSON blob by descriptor and check its digest and size. */
async function verifiedJson(src: BlobSource, d: Descriptor, input: string): Promise<Uint8Array> {
  const bytes = await src.json(blobName(d.digest));
  const member = `blob ${d.digest}`;
  if (bytes.length !== d.size)
    throw new ImakitError('E_PKG_DIGEST_MISMATCH', `${bytes.length} bytes, the descriptor says ${d.size}`, {
      path: input,
      member,
    });
  checkBlob(bytes, splitDigest(d.digest), input, member);
  return bytes;
}

/** The image names an OCI descriptor answers to (`ref.name` annotations: a tag or a full name). */
function namesOf(d: Descriptor): string[] {
  const a = d.annotations ?? {};
  return [a['io.containerd.image.name'], a['org.opencontainers.image.ref.name']].filter(
    (x): x is string => x !== undefined,
  );
}

/** `name:tag` matches a full name, the tag alone (ref.name is often only the tag), or `name` = `name:latest`. */
function nameMatches(names: readonly string[], want: string): boolean {
  const tag = want.includes(':') ? want.slice(want.lastIndexOf(':') + 1) : 'latest';
  const full = want.includes(':') ? want : `${want}:latest`;
  return names.some((n) => n === want || n === full || n === tag || n.endsWith(`/${full}`));
}

export interface ImageSelection {
  /** `NAME[:TAG]` of the image in an archive or layout holding several */
  readonly image?: string;
  /** platform to take from an image index (default: linux and this machine's architecture) */
  readonly platform?: Platform;
}

function selectByName<T>(
  items: readonly T[],
  names: (t: T) => string[],
  want: string | undefined,
  what: string,
): T {
  const hits = want === undefined ? items : items.filter((t) => nameMatches(names(t), want));
  if (hits.length === 1) return hits[0]!;
  const have = items.map((t) => names(t).join('|') || '(unnamed)').join(', ');
  throw new ImakitError(
    'E_OCI_SELECT',
    want === undefined
      ? `${items.length} images (${have || 'none'}): choose one with --image NAME:TAG`
      : `${hits.length === 0 ? 'no' : hits.length} image named ${want} (the archive has: ${have || 'none'})`,
    { path: what },
  );
}

async function layersOf(
  src: BlobSource,
  what: string,
  sel: ImageSelection,
  defaultPlatform: Platform,
): Promise<{ image: string; layers: Layer[] }> {
  const platform = sel.platform ?? defaultPlatform;
  if (src.has('index.json') && src.has('oci-layout')) {
    const top = parseOciIndex(await src.json('index.json'), `${what}:index.json`);
    if (top.length === 0)
      throw new ImakitError('E_OCI_FORMAT', 'index.json lists no manifest', {
        path: what,
        member: 'index.json',
      });
    // several images in one layout are told apart by name; platform variants of one image by platform
    const named = sel.image === undefined ? top : top.filter((d) => nameMatches(namesOf(d), sel.image!));
    let d =
      named.length > 1 && named.every((x) => x.platform !== undefined)
        ? selectPlatform(named, platform, what)
        : selectByName(top, namesOf, sel.image, what);
    const image = namesOf(d)[0] ?? d.digest;
    let m = parseOciManifest(await verifiedJson(src, d, what), `${what}:${d.digest}`);
    for (let depth = 0; m.mediaType === MEDIA.INDEX || m.mediaType === MEDIA.DOCKER_LIST; depth++) {
      if (depth >= 4)
        throw new ImakitError('E_OCI_FORMAT', 'image indexes nested more than 4 deep', { path: what });
      d = selectPlatform(m.layers, platform, `${what}:${d.digest}`);
      m = parseOciManifest(await verifiedJson(src, d, what), `${what}:${d.digest}`);
    }
    const diffIds = parseConfigDiffIds(await verifiedJson(src, m.config, what), `${what}:${m.config.digest}`);
    if (diffIds && diffIds.length !== m.layers.length)
      throw new ImakitError(
        'E_OCI_FORMAT',
        `config lists ${diffIds.length} diff_ids for ${m.layers.length} layers`,
        { path: what, member: `blob ${m.config.digest}` },
      );
    return {
      image,
      layers: m.layers.map((l, i) => ({
        name: blobName(l.digest),
        digest: l.digest,
        compression: layerCompression(l.mediaType, `${what}:${l.digest}`),
        blob: { ...splitDigest(l.digest), size: l.size },
        ...(diffIds ? { diffId: splitDigest(diffIds[i]!) } : {}),
      })),
    };
  }
  if (src.has('manifest.json')) {
    const imgs = parseDockerSaveManifest(await src.json('manifest.json'), `${what}:manifest.json`);
    const img = selectByName(imgs, (x) => [...x.repoTags], sel.image, what);
    const cfgBytes = await src.json(img.config);
    const cfgDigest = digestOfName(img.config);
    if (cfgDigest) checkBlob(cfgBytes, cfgDigest, what, img.config);
    const diffIds = parseConfigDiffIds(cfgBytes, `${what}:${img.config}`);
    if (diffIds && diffIds.length !== img.layers.length)
      throw new ImakitError(
        'E_OCI_FORMAT',
        `config lists ${diffIds.length} diff_ids for ${img.layers.length} layers`,
        { path: what, member: img.config },
      );
    const image =
      (sel.image !== undefined ? img.repoTags.find((t) => nameMatches([t], sel.image!)) : undefined) ??
      img.repoTags[0] ??
      img.config;
    return {
      image,
      layers: img.layers.map((l, i) => {
        const blob = digestOfName(l);
        return {
          name: l,
          digest: l,
          compression: 'sniff' as const,
          ...(blob ? { blob } : {}),
          ...(diffIds ? { diffId: splitDigest(diffIds[i]!) } : {}),
        };
      }),
    };
  }
  throw new ImakitError(
    'E_OCI_FORMAT',
    'neither an OCI layout (oci-layout, index.json) nor a docker save archive (manifest.json)',
    { path: what },
  );
}

/**
 * Hashes a stream as it is read. Closing it early (a decompressor or tar walker that stops reading)
 * does not close the source: `finish` reads what is left, so the digest covers the whole blob.
 */
class HashedStream implements AsyncIterable<Uint8Array> {
  readonly #it: AsyncIterator<Uint8Array>;
  readonly #hasher;
  bytes = 0;
  constructor(src: AsyncIterable<Uint8Array>, algo: string) {
    this.#it = src[Symbol.asyncIterator]();
    this.#hasher = createHasher(algo);
  }
  async #next(): Promise<IteratorResult<Uint8Array>> {
    const r = await this.#it.next();
    if (!r.done) {
      this.#hasher.update(r.value);
      this.bytes += r.value.length;
    }
    return r;
  }
  [Symbol.asyncIterator](): AsyncIterator<Uint8Array> {
    return {
      next: () => this.#next(),
      return: () => Promise.resolve({ done: true, value: undefined }),
    };
  }
  /** Read the rest and return the hex digest. */
  async finish(): Promise<string> {
    for (let r = await this.#next(); !r.done; r = await this.#next()) void r;
    return Buffer.from(this.#hasher.digest()).toString('hex');
  }
  async close(): Promise<void> {
    await this.#it.return?.();
  }
}

async function* sniffed(
  src: AsyncIterable<Uint8Array>,
  onKind: (k: Compression) => void,
): AsyncGenerator<Uint8Array> {
  let first = true;
  for await (const c of src) {
    if (first) onKind(compressionOfMagic(c));
    first = false;
    yield c;
  }
}

interface Node {
  readonly layer: number;
  readonly type: string;
  readonly rec?: PackageFileRecord;
}

function parentOf(p: string): string {
  return p.slice(0, p.lastIndexOf('/')) || '/';
}

/**
 * The flattened view while layers are applied, with each directory's children indexed so that a
 * whiteout touches only the subtree it names (not every path of the image).
 */
class LayerView {
  readonly nodes = new Map<string, Node>();
  readonly #children = new Map<string, Set<string>>();

  get(p: string): Node | undefined {
    return this.nodes.get(p);
  }

  set(p: string, n: Node): void {
    if (!this.nodes.has(p) && p !== '/') {
      const parent = parentOf(p);
      let s = this.#children.get(parent);
      if (!s) this.#children.set(parent, (s = new Set()));
      s.add(p);
    }
    this.nodes.set(p, n);
  }

  delete(p: string): void {
    if (this.nodes.delete(p)) this.#children.get(parentOf(p))?.delete(p);
  }

  /** Delete what lower layers (below `layer`) put at `p` (unless `subtreeOnly`) and under it. */
  removeLower(p: string, layer: number, subtreeOnly = false): void {
    const n = this.nodes.get(p);
    if (!subtreeOnly && n && n.layer < layer) this.delete(p);
    const stack = [p];
    for (let d = stack.pop(); d !== undefined; d = stack.pop()) {
      const kids = this.#children.get(d);
      if (!kids) continue;
      for (const k of [...kids]) {
        stack.push(k);
        if (this.nodes.get(k)!.layer < layer) this.delete(k);
      }
      if (kids.size === 0) this.#children.delete(d);
    }
  }
}

/**
 * Every regular file of the flattened image, hashed with `opts.algos` (default sha256).
 * @throws ImakitError E_OCI_FORMAT, E_PKG_FORMAT, E_PKG_COMPRESSION, E_PKG_TOO_LARGE (naming the layer)
 */
export async function* readOciImage(
  input: string,
  opts: OciReaderOptions = {},
): AsyncGenerator<PackageFileRecord> {
  const algos = opts.algos ?? ['sha256'];
  const budget = opts.budget ?? new ByteBudget();
  let st;
  try {
    st = await stat(input);
  } catch (e) {
    throw fromSystemError(e, 'E_IO_READ', input);
  }
  const src = st.isDirectory() ? await dirSource(input) : await tarSource(input);
  const { image, layers } = await layersOf(src, input, opts, {
    os: 'linux',
    architecture: ociArchitecture(process.arch),
  });
  const view = new LayerView();
  for (let li = 0; li < layers.length; li++) {
    const layer = layers[li]!;
    const provenance: Provenance = Object.freeze({ kind: 'oci', image, layer: layer.digest, source: input });
    let kind: Compression = layer.compression === 'sniff' ? 'none' : layer.compression;
    const member = `layer ${layer.digest}`;
    const rawHashed = layer.blob ? new HashedStream(src.read(layer.name), layer.blob.algo) : undefined;
    const rawSrc = rawHashed ?? src.read(layer.name);
    const raw = layer.compression === 'sniff' ? sniffed(rawSrc, (k) => (kind = k)) : rawSrc;
    // the kind is known once the first chunk is seen: start decompressing lazily
    const lazy = (async function* () {
      const it = raw[Symbol.asyncIterator]();
      const first = await it.next();
      const rest = (async function* () {
        if (!first.done) yield first.value;
        for (let r = await it.next(); !r.done; r = await it.next()) yield r.value;
      })();
      yield* decompress(kind, rest, budget, input, member);
    })();
    const tarHashed = layer.diffId ? new HashedStream(lazy, layer.diffId.algo) : undefined;
    try {
      await applyLayer(tarHashed ?? lazy, li, member, view, provenance, algos, input);
      if (tarHashed) {
        const got = await tarHashed.finish();
        if (got !== layer.diffId!.hex)
          throw new ImakitError(
            'E_PKG_DIGEST_MISMATCH',
            `uncompressed ${layer.diffId!.algo} is ${got}, the config's diff_id is ${layer.diffId!.hex}`,
            { path: input, member },
          );
      }
      if (rawHashed) {
        const got = await rawHashed.finish();
        const want = layer.blob!;
        if (want.size !== undefined && rawHashed.bytes !== want.size)
          throw new ImakitError(
            'E_PKG_DIGEST_MISMATCH',
            `blob has ${rawHashed.bytes} bytes, the descriptor says ${want.size}`,
            { path: input, member },
          );
        if (got !== want.hex)
          throw new ImakitError(
            'E_PKG_DIGEST_MISMATCH',
            `blob ${want.algo} is ${got}, expected ${want.hex}`,
            {
              path: input,
              member,
            },
          );
      }
    } finally {
      await tarHashed?.close();
      await rawHashed?.close();
    }
  }
  const paths = [...view.nodes.keys()].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
  for (const p of paths) {
    const n = view.get(p)!;
    if (n.rec) yield n.rec;
  }
}

/** Apply one layer's tar to the view. */
async function applyLayer(
  tar: AsyncIterable<Uint8Array>,
  li: number,
  member: string,
  view: LayerView,
  provenance: Provenance,
  algos: readonly string[],
  input: string,
): Promise<void> {
  {
    for await (const { entry, body } of walkTar(tar, { member })) {
      const wh = whiteoutOf(entry.path, `${input}:${member}`);
      if (wh?.kind === 'opaque') {
        view.removeLower(wh.dir, li, true);
        continue;
      }
      if (wh?.kind === 'delete') {
        view.removeLower(wh.path, li);
        continue;
      }
      const old = view.get(entry.path);
      if (old && old.layer < li) {
        // a directory over a directory merges; anything else replaces what was there (and under it)
        if (entry.type !== 'dir' && old.type === 'dir') view.removeLower(entry.path, li);
        else if (!(entry.type === 'dir' && old.type === 'dir')) view.delete(entry.path);
      }
      if (entry.type === 'file') {
        const { digests, size } = await hashStream(body, algos);
        const sig = entry.xattrs.get('security.ima');
        view.set(entry.path, {
          layer: li,
          type: 'file',
          rec: Object.freeze({
            path: entry.path,
            size,
            mode: entry.mode,
            digests,
            ...(sig ? { imaSignature: sig } : {}),
            provenance,
          }),
        });
      } else if (entry.type === 'hardlink') {
        const t = view.get(entry.linkname);
        if (!t?.rec)
          throw new ImakitError(
            'E_PKG_FORMAT',
            `hard link to ${entry.linkname}, which is not a regular file`,
            { path: input, member: `${member}:${entry.rawName}` },
          );
        view.set(entry.path, {
          layer: li,
          type: 'file',
          rec: Object.freeze({ ...t.rec, path: entry.path, provenance }),
        });
      } else view.set(entry.path, { layer: li, type: entry.type });
    }
  }
}
