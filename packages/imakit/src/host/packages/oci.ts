/**
 * References from an OCI image: an image layout directory (`oci-layout`, `index.json`, `blobs/`) or
 * a `docker save` tarball (its `manifest.json`, or the OCI layout newer Docker writes inside it).
 * Layers are applied in manifest order (layer.md): an entry replaces what lower layers had at its
 * path, `.wh.<name>` deletes `<name>` and everything under it, `.wh..wh..opq` hides the lower layers'
 * content of its directory. Regular files are hashed as they stream by; `SCHILY.xattr.security.ima`
 * pax records are kept. The flattened view is yielded at the end, sorted by path.
 */
import { existsSync } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import {
  layerCompression,
  parseDockerSaveManifest,
  parseOciIndex,
  parseOciManifest,
  whiteoutOf,
  MEDIA,
  MAX_OCI_JSON_BYTES,
} from '../../core/packages/oci.ts';
import { walkTar } from '../../core/packages/tar-walk.ts';
import type { Provenance } from '../../core/refs/reference-set.ts';
import { fromSystemError, ImakitError } from '../../errors.ts';
import { ByteBudget, compressionOfMagic, decompress, type Compression } from './decompress.ts';
import { hashStream, type PackageFileRecord, readRange, type ReaderOptions } from './file-record.ts';

export interface OciReaderOptions extends ReaderOptions {
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
    json: async (name) => {
      const p = join(dir, name);
      try {
        if ((await stat(p)).size > MAX_OCI_JSON_BYTES)
          throw new ImakitError('E_PKG_TOO_LARGE', `over ${MAX_OCI_JSON_BYTES} bytes`, { path: p });
        return await readFile(p);
      } catch (e) {
        throw fromSystemError(e, 'E_IO_READ', p);
      }
    },
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
  readonly digest: string;
  readonly compression: Compression | 'sniff';
}

function blobName(digest: string): string {
  const [alg, hex] = digest.split(':');
  return `blobs/${alg}/${hex}`;
}

async function layersOf(src: BlobSource, what: string): Promise<{ image: string; layers: Layer[] }> {
  if (src.has('index.json') && src.has('oci-layout')) {
    const manifests = parseOciIndex(await src.json('index.json'), `${what}:index.json`);
    let d = manifests[0];
    if (!d)
      throw new ImakitError('E_OCI_FORMAT', 'index.json lists no manifest', {
        path: what,
        member: 'index.json',
      });
    let m = parseOciManifest(await src.json(blobName(d.digest)), `${what}:${d.digest}`);
    // an image index inside: take its first manifest (multi-platform selection is not done)
    for (
      let depth = 0;
      (m.mediaType === MEDIA.INDEX || m.mediaType === MEDIA.DOCKER_LIST) && depth < 4;
      depth++
    ) {
      d = m.layers[0];
      if (!d) throw new ImakitError('E_OCI_FORMAT', 'image index lists no manifest', { path: what });
      m = parseOciManifest(await src.json(blobName(d.digest)), `${what}:${d.digest}`);
    }
    const image = d.annotations?.['org.opencontainers.image.ref.name'] ?? d.digest;
    return {
      image,
      layers: m.layers.map((l) => ({
        name: blobName(l.digest),
        digest: l.digest,
        compression: layerCompression(l.mediaType, `${what}:${l.digest}`),
      })),
    };
  }
  if (src.has('manifest.json')) {
    const imgs = parseDockerSaveManifest(await src.json('manifest.json'), `${what}:manifest.json`);
    const img = imgs[0];
    if (!img)
      throw new ImakitError('E_OCI_FORMAT', 'manifest.json lists no image', {
        path: what,
        member: 'manifest.json',
      });
    return {
      image: img.repoTags[0] ?? img.config,
      layers: img.layers.map((l) => ({ name: l, digest: l, compression: 'sniff' })),
    };
  }
  throw new ImakitError(
    'E_OCI_FORMAT',
    'neither an OCI layout (oci-layout, index.json) nor a docker save archive (manifest.json)',
    { path: what },
  );
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

/** Delete `p` and everything under it that came from layers below `layer`. */
function removeLower(view: Map<string, Node>, p: string, layer: number, subtreeOnly = false): void {
  const prefix = p === '/' ? '/' : `${p}/`;
  for (const [k, n] of view)
    if (n.layer < layer && ((!subtreeOnly && k === p) || k.startsWith(prefix))) view.delete(k);
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
  const { image, layers } = await layersOf(src, input);
  const view = new Map<string, Node>();
  for (let li = 0; li < layers.length; li++) {
    const layer = layers[li]!;
    const provenance: Provenance = Object.freeze({ kind: 'oci', image, layer: layer.digest, source: input });
    let kind: Compression = layer.compression === 'sniff' ? 'none' : layer.compression;
    const raw =
      layer.compression === 'sniff' ? sniffed(src.read(layer.name), (k) => (kind = k)) : src.read(layer.name);
    // the kind is known once the first chunk is seen: start decompressing lazily
    const lazy = (async function* () {
      const it = raw[Symbol.asyncIterator]();
      const first = await it.next();
      const rest = (async function* () {
        if (!first.done) yield first.value;
        for (let r = await it.next(); !r.done; r = await it.next()) yield r.value;
      })();
      yield* decompress(kind, rest, budget, input, `layer ${layer.digest}`);
    })();
    for await (const { entry, body } of walkTar(lazy, { member: `layer ${layer.digest}` })) {
      const wh = whiteoutOf(entry.path, `${input}:layer ${layer.digest}`);
      if (wh?.kind === 'opaque') {
        removeLower(view, wh.dir, li, true);
        continue;
      }
      if (wh?.kind === 'delete') {
        removeLower(view, wh.path, li);
        continue;
      }
      const old = view.get(entry.path);
      if (old && old.layer < li) {
        // a directory over a directory merges; anything else replaces what was there (and under it)
        if (entry.type !== 'dir' && old.type === 'dir') removeLower(view, entry.path, li);
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
            { path: input, member: `layer ${layer.digest}:${entry.rawName}` },
          );
        view.set(entry.path, {
          layer: li,
          type: 'file',
          rec: Object.freeze({ ...t.rec, path: entry.path, provenance }),
        });
      } else view.set(entry.path, { layer: li, type: entry.type });
    }
  }
  const paths = [...view.keys()].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
  for (const p of paths) {
    const n = view.get(p)!;
    if (n.rec) yield n.rec;
  }
}
