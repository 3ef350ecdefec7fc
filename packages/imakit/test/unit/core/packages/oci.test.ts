/**
 * OCI and docker save JSON codecs: documents shaped as image-spec's examples parse (manifest,
 * index with platforms, docker save manifest.json), platforms are selected exactly, whiteouts
 * classified by layer.md's rules; hostile JSON (not JSON, too big, wrong schema version, bad digest,
 * an index without manifests, too many layers) gives typed errors naming the document; random bytes
 * give only CodecError (fast-check).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  layerCompression,
  MAX_OCI_JSON_BYTES,
  MAX_OCI_LAYERS,
  MEDIA,
  ociArchitecture,
  parseDockerSaveManifest,
  parseOciIndex,
  parseOciManifest,
  parsePlatform,
  selectPlatform,
  whiteoutOf,
} from '../../../../src/core/packages/oci.ts';
import { ImakitError } from '../../../../src/errors.ts';

const J = (v: unknown) => Uint8Array.from(Buffer.from(JSON.stringify(v)));
const D = (c: string) => `sha256:${c.repeat(64)}`;
const desc = (c: string, extra: object = {}) => ({
  mediaType: MEDIA.MANIFEST,
  digest: D(c),
  size: 10,
  ...extra,
});

test('manifest, index with platforms, docker save manifest.json', () => {
  const m = parseOciManifest(
    J({
      schemaVersion: 2,
      mediaType: MEDIA.MANIFEST,
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: D('a'), size: 7023 },
      layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: D('b'), size: 32654 }],
    }),
    'm',
  );
  assert.equal(m.layers.length, 1);
  assert.equal(layerCompression(m.layers[0]!.mediaType, 'm'), 'gzip');
  const idx = parseOciIndex(
    J({
      schemaVersion: 2,
      manifests: [
        desc('1', { platform: { os: 'linux', architecture: 'amd64' } }),
        desc('2', { platform: { os: 'linux', architecture: 'arm64', variant: 'v8' } }),
        desc('3', { platform: { os: 'unknown', architecture: 'unknown' } }),
      ],
    }),
  );
  assert.equal(selectPlatform(idx, parsePlatform('linux/amd64'), 'i').digest, D('1'));
  assert.equal(selectPlatform(idx, parsePlatform('linux/arm64'), 'i').digest, D('2'));
  assert.equal(selectPlatform(idx, parsePlatform('linux/arm64/v8'), 'i').digest, D('2'));
  assert.throws(
    () => selectPlatform(idx, parsePlatform('linux/s390x'), 'i'),
    (e: unknown) =>
      e instanceof ImakitError && e.code === 'E_OCI_SELECT' && /linux\/arm64\/v8/.test(e.message),
  );
  assert.throws(
    () => parsePlatform('amd64'),
    (e: unknown) => e instanceof ImakitError && e.code === 'E_USAGE',
  );
  // a layout's index.json without platforms and one image: that image
  assert.equal(selectPlatform([desc('9') as never], parsePlatform('linux/amd64'), 'i').digest, D('9'));
  assert.equal(ociArchitecture('x64'), 'amd64');
  assert.equal(ociArchitecture('arm64'), 'arm64');
  // a nested index parses as an index
  const nested = parseOciManifest(
    J({ schemaVersion: 2, mediaType: MEDIA.INDEX, manifests: [desc('4')] }),
    'n',
  );
  assert.equal(nested.mediaType, MEDIA.INDEX);
  const save = parseDockerSaveManifest(
    J([
      { Config: 'a.json', RepoTags: ['a:1', 'a:latest'], Layers: ['l/layer.tar'] },
      { Config: 'b.json', RepoTags: null, Layers: [] },
    ]),
  );
  assert.deepEqual(
    save.map((s) => s.repoTags),
    [['a:1', 'a:latest'], []],
  );
});

test('whiteouts: delete, opaque, and .wh. names that are neither', () => {
  assert.deepEqual(whiteoutOf('/etc/.wh.b', 'l'), { kind: 'delete', path: '/etc/b' });
  assert.deepEqual(whiteoutOf('/.wh.top', 'l'), { kind: 'delete', path: '/top' });
  assert.deepEqual(whiteoutOf('/opt/.wh..wh..opq', 'l'), { kind: 'opaque', dir: '/opt' });
  assert.equal(whiteoutOf('/etc/b.wh.x', 'l'), undefined);
  for (const bad of ['/etc/.wh.', '/etc/.wh..wh.x', '/etc/.wh..'])
    assert.throws(
      () => whiteoutOf(bad, 'l'),
      (e: unknown) => e instanceof ImakitError && e.code === 'E_OCI_FORMAT',
      bad,
    );
});

test('hostile JSON: typed errors naming the document', () => {
  const m = (v: object) => () => parseOciManifest(J({ schemaVersion: 2, ...v }), 'doc');
  const cases: [string, () => unknown, string][] = [
    ['not JSON', () => parseOciManifest(Buffer.from('{'), 'doc'), 'E_OCI_FORMAT'],
    ['not an object', () => parseOciManifest(J([1]), 'doc'), 'E_OCI_FORMAT'],
    ['too big', () => parseOciManifest(new Uint8Array(MAX_OCI_JSON_BYTES + 1), 'doc'), 'E_PKG_TOO_LARGE'],
    ['schemaVersion 1', () => parseOciManifest(J({ schemaVersion: 1 }), 'doc'), 'E_OCI_FORMAT'],
    ['index without manifests', m({ mediaType: MEDIA.INDEX }), 'E_OCI_FORMAT'],
    ['docker list without manifests', m({ mediaType: MEDIA.DOCKER_LIST, manifests: 3 }), 'E_OCI_FORMAT'],
    ['no layers', m({ config: desc('a') }), 'E_OCI_FORMAT'],
    [
      'bad digest',
      m({ config: desc('a'), layers: [{ ...desc('b'), digest: 'sha256:xyz' }] }),
      'E_OCI_FORMAT',
    ],
    ['negative size', m({ config: desc('a'), layers: [{ ...desc('b'), size: -1 }] }), 'E_OCI_FORMAT'],
    ['fractional size', m({ config: desc('a'), layers: [{ ...desc('b'), size: 1.5 }] }), 'E_OCI_FORMAT'],
    [
      'annotation not a string',
      m({ config: desc('a', { annotations: { x: 1 } }), layers: [] }),
      'E_OCI_FORMAT',
    ],
    [
      'platform without os',
      () =>
        parseOciIndex(
          J({ schemaVersion: 2, manifests: [desc('a', { platform: { architecture: 'amd64' } })] }),
          'doc',
        ),
      'E_OCI_FORMAT',
    ],
    [
      'too many layers',
      m({ config: desc('a'), layers: Array.from({ length: MAX_OCI_LAYERS + 1 }, () => desc('b')) }),
      'E_PKG_TOO_LARGE',
    ],
    ['index without manifests array', () => parseOciIndex(J({ schemaVersion: 2 }), 'doc'), 'E_OCI_FORMAT'],
    ['docker save not an array', () => parseDockerSaveManifest(J({}), 'doc'), 'E_OCI_FORMAT'],
    [
      'docker save entry without Layers',
      () => parseDockerSaveManifest(J([{ Config: 'x' }]), 'doc'),
      'E_OCI_FORMAT',
    ],
    [
      'unknown layer media type',
      () => layerCompression('application/vnd.oci.image.layer.v1.tar+bzip2', 'doc'),
      'E_OCI_FORMAT',
    ],
  ];
  for (const [what, fn, code] of cases)
    assert.throws(
      fn,
      (e: unknown) =>
        e instanceof ImakitError && e.code === code && String(e.context.member).startsWith('doc'),
      what,
    );
});

test('property: random bytes and random JSON give documents or an ImakitError, nothing else', () => {
  const parsers = [
    (b: Uint8Array) => parseOciIndex(b, 'x'),
    (b: Uint8Array) => parseOciManifest(b, 'x'),
    (b: Uint8Array) => parseDockerSaveManifest(b, 'x'),
  ];
  const doc = fc.oneof(
    fc.uint8Array({ maxLength: 200 }),
    fc.jsonValue({ maxDepth: 4 }).map(J),
    fc
      .record(
        {
          schemaVersion: fc.constantFrom(2, 1),
          mediaType: fc.constantFrom(MEDIA.INDEX, MEDIA.MANIFEST, 7),
          manifests: fc.jsonValue({ maxDepth: 2 }),
          layers: fc.jsonValue({ maxDepth: 2 }),
          config: fc.jsonValue({ maxDepth: 2 }),
        },
        { requiredKeys: ['schemaVersion'] },
      )
      .map(J),
  );
  fc.assert(
    fc.property(doc, (b) => {
      for (const p of parsers)
        try {
          p(b);
        } catch (e) {
          assert.ok(e instanceof ImakitError, String(e));
        }
    }),
    { numRuns: 3000 },
  );
});
