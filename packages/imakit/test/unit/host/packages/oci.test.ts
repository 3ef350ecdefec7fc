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
import { parsePlatform } from '../../../../src/core/packages/oci.ts';
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
    Buffer.from(
      JSON.stringify({
        architecture: 'amd64',
        os: 'linux',
        rootfs: { type: 'layers', diff_ids: ls.map((l) => `sha256:${sha(l)}`) },
      }),
    ),
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
        config: { mediaType: 'x', ...blob(layout, Buffer.from('{}')) },
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

/** An OCI layout holding one image index with a manifest per platform (each a one-layer image). */
function multiPlatformLayout(name: string, perArch: Record<string, Record<string, string>>): string {
  const layout = join(dir, name);
  const manifests = Object.entries(perArch).map(([arch, files]) => {
    const root = join(dir, `${name}-${arch}`);
    tree(root, files);
    const tar = gnuTar(root, join(dir, `${name}-${arch}.tar`));
    const layer = blob(layout, execFileSync('gzip', ['-n', '-c'], { input: tar }));
    const config = blob(
      layout,
      Buffer.from(
        JSON.stringify({
          architecture: arch,
          os: 'linux',
          rootfs: { type: 'layers', diff_ids: [`sha256:${sha(tar)}`] },
        }),
      ),
    );
    const m = blob(
      layout,
      Buffer.from(
        JSON.stringify({
          schemaVersion: 2,
          mediaType: 'application/vnd.oci.image.manifest.v1+json',
          config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...config },
          layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', ...layer }],
        }),
      ),
    );
    return {
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      ...m,
      platform: { os: 'linux', architecture: arch },
    };
  });
  const idx = blob(
    layout,
    Buffer.from(
      JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests }),
    ),
  );
  writeFileSync(join(layout, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
  writeFileSync(
    join(layout, 'index.json'),
    JSON.stringify({
      schemaVersion: 2,
      manifests: [
        {
          mediaType: 'application/vnd.oci.image.index.v1+json',
          ...idx,
          annotations: { 'org.opencontainers.image.ref.name': 'multi:1' },
        },
      ],
    }),
  );
  return layout;
}

const HOST_ARCH = ({ x64: 'amd64', arm64: 'arm64' } as Record<string, string>)[process.arch] ?? process.arch;
const OTHER_ARCH = HOST_ARCH === 'amd64' ? 'arm64' : 'amd64';

test('image index: the host platform by default, --platform picks another, an absent one is E_OCI_SELECT listing what there is', async () => {
  const layout = multiPlatformLayout('multi', {
    [HOST_ARCH]: { '/usr/bin/arch': `${HOST_ARCH}\n` },
    [OTHER_ARCH]: { '/usr/bin/arch': `${OTHER_ARCH}\n` },
  });
  const digestOf = async (platform?: string) => {
    const out: PackageFileRecord[] = [];
    for await (const r of readOciImage(layout, platform ? { platform: parsePlatform(platform) } : {}))
      out.push(r);
    return out.map((r) => `${r.path} ${r.digests.sha256}`);
  };
  assert.deepEqual(await digestOf(), [`/usr/bin/arch ${sha(`${HOST_ARCH}\n`)}`]);
  assert.deepEqual(await digestOf(`linux/${OTHER_ARCH}`), [`/usr/bin/arch ${sha(`${OTHER_ARCH}\n`)}`]);
  await assert.rejects(
    digestOf('linux/s390x'),
    (e: unknown) =>
      e instanceof ImakitError && e.code === 'E_OCI_SELECT' && e.message.includes(`linux/${OTHER_ARCH}`),
  );
});

test('tampered blobs: a layer, a manifest, a config whose bytes differ from their digest are E_PKG_DIGEST_MISMATCH naming the blob', async () => {
  const fresh = () => {
    const l = ociLayout(ls);
    const copy = join(dir, `tamper-${Math.random().toString(36).slice(2)}`);
    execFileSync('cp', ['-a', l, copy]);
    return copy;
  };
  const index = (layout: string) =>
    JSON.parse(readFileSync(join(layout, 'index.json'), 'utf8')) as { manifests: { digest: string }[] };
  const blobPath = (layout: string, d: string) => join(layout, 'blobs/sha256', d.slice('sha256:'.length));
  const manifestOf = (layout: string) =>
    JSON.parse(readFileSync(blobPath(layout, index(layout).manifests[0]!.digest), 'utf8')) as {
      config: { digest: string };
      layers: { digest: string }[];
    };
  const expectMismatch = async (layout: string, member: RegExp) =>
    assert.rejects(
      view(layout),
      (e: unknown) =>
        e instanceof ImakitError &&
        e.code === 'E_PKG_DIGEST_MISMATCH' &&
        member.test(String(e.context.member)),
    );
  // the plain (uncompressed) third layer: flip one content byte; size unchanged
  const a = fresh();
  const plain = manifestOf(a).layers[2]!.digest;
  const bytes = readFileSync(blobPath(a, plain));
  bytes[TAR_BLOCK * 3 + 2]! ^= 1;
  writeFileSync(blobPath(a, plain), bytes);
  await expectMismatch(a, new RegExp(`layer ${plain}`));
  // the manifest
  const b = fresh();
  const md = index(b).manifests[0]!.digest;
  writeFileSync(
    blobPath(b, md),
    readFileSync(blobPath(b, md), 'utf8').replace('"schemaVersion":2', '"schemaVersion": 2'),
  );
  await expectMismatch(b, new RegExp(`blob ${md}`));
  // the config
  const c = fresh();
  const cd = manifestOf(c).config.digest;
  writeFileSync(blobPath(c, cd), readFileSync(blobPath(c, cd), 'utf8').replace('amd64', 'arm64'));
  await expectMismatch(c, new RegExp(`blob ${cd}`));
});

test('docker save with several images: --image NAME:TAG chooses; without it E_OCI_SELECT lists the tags', async () => {
  const root = join(dir, 'save2');
  mkdirSync(root);
  const imgs: { tag: string; files: Record<string, string> }[] = [
    { tag: 'one:1', files: { '/bin/one': '1\n' } },
    { tag: 'two:2', files: { '/bin/two': '2\n' } },
  ];
  const manifest = imgs.map((im, i) => {
    tree(join(dir, `save2-src${i}`), im.files);
    const tar = gnuTar(join(dir, `save2-src${i}`), join(dir, `save2-l${i}.tar`));
    mkdirSync(join(root, `l${i}`));
    writeFileSync(join(root, `l${i}`, 'layer.tar'), tar);
    const cfg = Buffer.from(JSON.stringify({ rootfs: { type: 'layers', diff_ids: [`sha256:${sha(tar)}`] } }));
    writeFileSync(join(root, `${sha(cfg)}.json`), cfg);
    return { Config: `${sha(cfg)}.json`, RepoTags: [im.tag], Layers: [`l${i}/layer.tar`] };
  });
  writeFileSync(join(root, 'manifest.json'), JSON.stringify(manifest));
  const tar = join(dir, 'save2.tar');
  execFileSync('tar', ['-C', root, '-cf', tar, '.']);
  const paths = async (image?: string) => {
    const out: string[] = [];
    for await (const r of readOciImage(tar, image ? { image } : {}))
      out.push(`${r.path} ${r.provenance.image}`);
    return out;
  };
  assert.deepEqual(await paths('two:2'), ['/bin/two two:2']);
  assert.deepEqual(await paths('one:1'), ['/bin/one one:1']);
  await assert.rejects(
    paths(),
    (e: unknown) => e instanceof ImakitError && e.code === 'E_OCI_SELECT' && /one:1.*two:2/.test(e.message),
  );
  await assert.rejects(
    paths('three:3'),
    (e: unknown) => e instanceof ImakitError && e.code === 'E_OCI_SELECT',
  );
  // a layer whose uncompressed tar differs from the config's diff_id
  writeFileSync(join(root, 'l1', 'layer.tar'), gnuTar(join(dir, 'save2-src0'), join(dir, 'x.tar')));
  execFileSync('tar', ['-C', root, '-cf', tar, '.']);
  await assert.rejects(
    paths('two:2'),
    (e: unknown) =>
      e instanceof ImakitError &&
      e.code === 'E_PKG_DIGEST_MISMATCH' &&
      /l1\/layer\.tar/.test(String(e.context.member)),
  );
});

test('whiteouts over a wide tree: only the named subtree goes (siblings with the same prefix stay)', async () => {
  const low: Record<string, string> = {};
  for (let d = 0; d < 40; d++) for (let f = 0; f < 50; f++) low[`/data/d${d}/f${f}`] = `${d}.${f}\n`;
  low['/data/d1x/keep'] = 'keep\n';
  const up: Record<string, string> = { '/data/d2/.wh..wh..opq': '', '/data/d2/new': 'new\n' };
  for (let d = 0; d < 40; d += 2) if (d !== 2) up[`/data/.wh.d${d}`] = '';
  up['/data/.wh.d1'] = '';
  tree(join(dir, 'wide1'), low);
  tree(join(dir, 'wide2'), up);
  const layout = join(dir, 'wide');
  const lt = [
    gnuTar(join(dir, 'wide1'), join(dir, 'wide1.tar')),
    gnuTar(join(dir, 'wide2'), join(dir, 'wide2.tar')),
  ];
  const descs = lt.map((l) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar', ...blob(layout, l) }));
  const cfg = blob(
    layout,
    Buffer.from(JSON.stringify({ rootfs: { type: 'layers', diff_ids: lt.map((l) => `sha256:${sha(l)}`) } })),
  );
  const m = blob(
    layout,
    Buffer.from(JSON.stringify({ schemaVersion: 2, config: { mediaType: 'c', ...cfg }, layers: descs })),
  );
  writeFileSync(join(layout, 'oci-layout'), '{}');
  writeFileSync(
    join(layout, 'index.json'),
    JSON.stringify({
      schemaVersion: 2,
      manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', ...m }],
    }),
  );
  const got = (await view(layout)).map((r) => r.path);
  const want = [
    ...Object.keys(low).filter((p) => {
      const d = /^\/data\/d(\d+)\//.exec(p);
      return d ? Number(d[1]) % 2 === 1 && d[1] !== '1' : true;
    }),
    '/data/d2/new',
  ].sort();
  assert.deepEqual(got, want);
  assert.ok(got.includes('/data/d1x/keep'));
});
