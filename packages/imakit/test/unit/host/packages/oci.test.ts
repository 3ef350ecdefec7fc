/**
 * OCI images (issue 12 part 3): an image layout built here with GNU tar, gzip and zstd (two layers
 * with a whiteout and an opaque directory, then a third written with imakit's tar encoder carrying a
 * binary `SCHILY.xattr.security.ima` pax record) and the same layers as a `docker save` archive; the
 * flattened view is checked file by file against contents hashed with node:crypto.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  encodePaxRecords,
  encodeTarHeader,
  TAR_BLOCK,
  tarPadding,
} from '../../../../src/core/packages/tar.ts';
import { readOciImage } from '../../../../src/host/packages/oci.ts';
import type { PackageFileRecord } from '../../../../src/host/packages/file-record.ts';
import { ImakitError } from '../../../../src/errors.ts';
import { tempDir } from '../../../helpers.ts';

const { dir, cleanup } = tempDir('imakit-oci-');
process.on('exit', cleanup);

const sha = (b: string | Uint8Array) => createHash('sha256').update(b).digest('hex');

function tree(root: string, files: Record<string, string>): void {
  for (const [p, c] of Object.entries(files)) {
    mkdirSync(join(root, p, '..'), { recursive: true });
    writeFileSync(join(root, p), c);
  }
}

function gnuTar(root: string, out: string): Buffer {
  execFileSync('tar', [
    '--sort=name',
    '--owner=0',
    '--group=0',
    '--numeric-owner',
    '--format=posix',
    '-C',
    root,
    '-cf',
    out,
    '.',
  ]);
  return readFileSync(out);
}

const SIG = Uint8Array.from([3, 2, 4, 0x0a, 0, 0x3d, 0x20, 0xff, 1, 2]); // newline, NUL, '=' inside

/** A tar made with imakit's encoder: one file with a security.ima pax record. */
function paxLayer(): Buffer {
  const content = Buffer.from('signed binary\n');
  const pax = encodePaxRecords([['SCHILY.xattr.security.ima', SIG]]);
  const parts = [
    encodeTarHeader({ name: 'PaxHeaders/signed', type: 'pax', size: pax.length }),
    pax,
    new Uint8Array(tarPadding(pax.length)),
    encodeTarHeader({ name: 'usr/bin/signed', type: 'file', size: content.length, mode: 0o755 }),
    content,
    new Uint8Array(tarPadding(content.length)),
    new Uint8Array(2 * TAR_BLOCK),
  ];
  return Buffer.concat(parts);
}

const L1 = {
  '/etc/a': 'a1\n',
  '/etc/b': 'b1\n',
  '/opt/dir/x': 'x\n',
  '/opt/dir/sub/y': 'y\n',
  '/usr/bin/tool': 'tool v1\n',
  '/keep/file': 'kept\n',
};
const L2 = {
  '/etc/.wh.b': '',
  '/opt/dir/.wh..wh..opq': '',
  '/opt/dir/z': 'z\n',
  '/usr/bin/tool': 'tool v2\n',
  '/etc/new': 'new\n',
};
const EXPECTED: Record<string, string> = {
  '/etc/a': 'a1\n',
  '/etc/new': 'new\n',
  '/keep/file': 'kept\n',
  '/opt/dir/z': 'z\n',
  '/usr/bin/signed': 'signed binary\n',
  '/usr/bin/tool': 'tool v2\n',
};

function layers(): Buffer[] {
  tree(join(dir, 'l1'), L1);
  tree(join(dir, 'l2'), L2);
  return [
    gnuTar(join(dir, 'l1'), join(dir, 'l1.tar')),
    gnuTar(join(dir, 'l2'), join(dir, 'l2.tar')),
    paxLayer(),
  ];
}

function blob(layout: string, data: Buffer): { digest: string; size: number } {
  const hex = sha(data);
  mkdirSync(join(layout, 'blobs/sha256'), { recursive: true });
  writeFileSync(join(layout, 'blobs/sha256', hex), data);
  return { digest: `sha256:${hex}`, size: data.length };
}

function ociLayout(ls: Buffer[]): string {
  const layout = join(dir, 'layout');
  const gz = execFileSync('gzip', ['-n', '-c'], { input: ls[0] });
  const zst = execFileSync('zstd', ['-q', '-c'], { input: ls[1] });
  const layerDescs = [
    { mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', ...blob(layout, gz) },
    { mediaType: 'application/vnd.oci.image.layer.v1.tar+zstd', ...blob(layout, zst) },
    { mediaType: 'application/vnd.oci.image.layer.v1.tar', ...blob(layout, ls[2]!) },
  ];
  const config = blob(
    layout,
    Buffer.from('{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}'),
  );
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...config },
      layers: layerDescs,
    }),
  );
  const m = blob(layout, manifest);
  writeFileSync(join(layout, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
  writeFileSync(
    join(layout, 'index.json'),
    JSON.stringify({
      schemaVersion: 2,
      manifests: [
        {
          mediaType: 'application/vnd.oci.image.manifest.v1+json',
          ...m,
          annotations: { 'org.opencontainers.image.ref.name': 'test:1' },
        },
      ],
    }),
  );
  return layout;
}

async function view(input: string): Promise<PackageFileRecord[]> {
  const out: PackageFileRecord[] = [];
  for await (const r of readOciImage(input)) out.push(r);
  return out;
}

function checkView(recs: PackageFileRecord[]): void {
  assert.deepEqual(
    recs.map((r) => r.path),
    Object.keys(EXPECTED).sort(),
  );
  for (const r of recs) assert.equal(r.digests.sha256, sha(EXPECTED[r.path]!), r.path);
  const signed = recs.find((r) => r.path === '/usr/bin/signed')!;
  assert.deepEqual(signed.imaSignature, SIG);
  assert.ok(recs.filter((r) => r.path !== '/usr/bin/signed').every((r) => r.imaSignature === undefined));
}

const ls = layers();

test('OCI layout (gzip, zstd, plain layers): whiteout, opaque dir and replacement applied; pax security.ima kept', async () => {
  const layout = ociLayout(ls);
  const recs = await view(layout);
  checkView(recs);
  assert.equal(recs[0]!.provenance.kind, 'oci');
  assert.equal(recs[0]!.provenance.image, 'test:1');
  const tool = recs.find((r) => r.path === '/usr/bin/tool')!;
  assert.match(tool.provenance.layer!, /^sha256:/);
  // the OCI layout packed as a tar (docker save since Docker 25 writes this shape) reads the same
  const packed = join(dir, 'layout.tar');
  execFileSync('tar', ['-C', layout, '-cf', packed, '.']);
  checkView(await view(packed));
});

test('docker save archive (manifest.json, layer.tar per layer) gives the same view', async () => {
  const root = join(dir, 'save');
  mkdirSync(root);
  ls.forEach((l, i) => {
    mkdirSync(join(root, `l${i}`));
    writeFileSync(
      join(root, `l${i}`, 'layer.tar'),
      i === 0 ? execFileSync('gzip', ['-n', '-c'], { input: l }) : l,
    );
  });
  writeFileSync(join(root, 'cfg.json'), '{}');
  writeFileSync(
    join(root, 'manifest.json'),
    JSON.stringify([
      { Config: 'cfg.json', RepoTags: ['saved:latest'], Layers: ls.map((_, i) => `l${i}/layer.tar`) },
    ]),
  );
  const tar = join(dir, 'save.tar');
  execFileSync('tar', ['-C', root, '-cf', tar, '.']);
  const recs = await view(tar);
  checkView(recs);
  assert.equal(recs[0]!.provenance.image, 'saved:latest');
});

test('bad images: a .wh. name that is no whiteout, a missing blob, a non-image: typed errors', async () => {
  const root = join(dir, 'badwh');
  tree(root, { '/etc/.wh..wh.x': '' });
  const layout = join(dir, 'bad-layout');
  const l = blob(layout, gnuTar(root, join(dir, 'badwh.tar')));
  const m = blob(
    layout,
    Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        config: { mediaType: 'x', ...l },
        layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', ...l }],
      }),
    ),
  );
  writeFileSync(join(layout, 'oci-layout'), '{}');
  writeFileSync(
    join(layout, 'index.json'),
    JSON.stringify({
      schemaVersion: 2,
      manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', ...m }],
    }),
  );
  await assert.rejects(
    view(layout),
    (e: unknown) => e instanceof ImakitError && e.code === 'E_OCI_FORMAT' && /\.wh\./.test(e.message),
  );
  await assert.rejects(
    view(join(dir, 'l1')),
    (e: unknown) => e instanceof ImakitError && e.code === 'E_OCI_FORMAT',
  );
});
