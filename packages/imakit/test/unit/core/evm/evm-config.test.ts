/** The EVM protected xattr list and presets (formats.md §4.2, real-kernel.md §2.1/§2.2). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EVM_PRESETS, EVM_XATTRS, resolveEvmConfig } from '../../../../src/core/evm/evm-config.ts';
import { isImakitError } from '../../../../src/errors.ts';

const ALL = [
  'security.selinux',
  'security.SMACK64',
  'security.SMACK64EXEC',
  'security.SMACK64TRANSMUTE',
  'security.SMACK64MMAP',
  'security.apparmor',
  'security.ima',
  'security.capability',
];

test('the kernel list in kernel order (the Debian kernel prints it in this order at boot)', () => {
  assert.deepEqual(
    EVM_XATTRS.map((e) => e.name),
    ALL,
  );
  assert.equal(EVM_XATTRS.at(-1)!.kconfig, null); // capability: always
});

test('presets', () => {
  assert.deepEqual(resolveEvmConfig('evmctl').enabled, [
    'security.selinux',
    'security.SMACK64',
    'security.apparmor',
    'security.ima',
    'security.capability',
  ]);
  assert.deepEqual(resolveEvmConfig('evmctl-smack').enabled, ALL);
  const deb = resolveEvmConfig('debian-6.1');
  assert.deepEqual(deb.enabled, [
    'security.selinux',
    'security.apparmor',
    'security.ima',
    'security.capability',
  ]);
  assert.equal(deb.fsUuid, true);
  assert.equal(deb.layout, 64);
  assert.deepEqual(resolveEvmConfig('mainline-default').enabled, ['security.capability']);
  // `all` is the full list regardless of config (pitfall 21)
  for (const name of Object.keys(EVM_PRESETS)) assert.deepEqual(resolveEvmConfig(name as 'evmctl').all, ALL);
  assert.equal(resolveEvmConfig().preset, 'evmctl');
  assert.ok(Object.isFrozen(deb) && Object.isFrozen(deb.enabled));
});

test('overrides: kconfig switches, fsUuid, layout', () => {
  const c = resolveEvmConfig({
    preset: 'debian-6.1',
    kconfig: { SECURITY_APPARMOR: false },
    fsUuid: false,
    layout: 32,
  });
  assert.deepEqual(c.enabled, ['security.selinux', 'security.ima', 'security.capability']);
  assert.equal(c.fsUuid, false);
  assert.equal(c.layout, 32);
});

test('runtime additions (CONFIG_EVM_ADD_XATTRS): appended, or enable a disabled entry in place', () => {
  const c = resolveEvmConfig({
    preset: 'debian-6.1',
    addXattrs: ['security.foo', 'security.SMACK64', 'security.ima'],
  });
  assert.deepEqual(c.enabled, [
    'security.selinux',
    'security.SMACK64',
    'security.apparmor',
    'security.ima',
    'security.capability',
    'security.foo',
  ]);
  assert.deepEqual(c.all, [...ALL, 'security.foo']);
});

test('rejections: unknown preset, runtime names outside security.*', () => {
  assert.throws(
    () => resolveEvmConfig('fedora' as 'evmctl'),
    (e) => isImakitError(e, 'E_USAGE'),
  );
  for (const bad of ['user.foo', 'security.', 'trusted.x', 'security.a\nb'])
    assert.throws(
      () => resolveEvmConfig({ addXattrs: [bad] }),
      (e) => isImakitError(e, 'E_USAGE'),
      bad,
    );
});
