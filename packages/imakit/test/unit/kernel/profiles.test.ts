/**
 * Kernel profiles as data: the facts real-kernel.md §2 records for Debian 6.1 and what differs on
 * mainline, observed through the emulator rather than by reading fields back.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { vectorPath } from '../../helpers.ts';
import { Emulator, ext4Fs } from '../../../src/kernel/emulator.ts';
import { getProfile, PROFILES } from '../../../src/kernel/profiles.ts';
import { runAccess } from '../../../src/kernel/workload.ts';
import { loadPublicKey } from '../../../src/core/keys/keys.ts';
import { parsePolicy } from '../../../src/core/policy/index.ts';

const ec = new Uint8Array(readFileSync(vectorPath('p256.cer')));
const sm2 = new Uint8Array(readFileSync(vectorPath('sm2.cer')));

test('debian-6.1: no ECDSA/SM2 keys, _ima keyring, sha256 + ima-sig defaults, policy writable once', () => {
  const e = new Emulator({ profile: getProfile('debian-6.1') });
  assert.equal(e.addKey('_ima', loadPublicKey(ec), ec).ok, false);
  assert.equal(e.addKey('_ima', loadPublicKey(sm2), sm2).ok, false);
  assert.equal(e.settings.hash, 'sha256');
  assert.equal(e.settings.template.name, 'ima-sig');
  assert.equal(e.loadPolicy('measure func=BPRM_CHECK\n').ok, true);
  assert.equal(
    e.loadPolicy('measure func=FILE_CHECK\n').ok,
    false,
    'the policy file is gone after the first write',
  );
  assert.equal(e.profile.imaKeyring, '_ima');
  // modsig and MMAP_CHECK_REQPROT are not in this kernel
  assert.equal(
    parsePolicy('appraise func=MODULE_CHECK appraise_type=imasig|modsig', { features: e.profile.policy }).ok,
    false,
  );
  assert.equal(parsePolicy('measure func=MMAP_CHECK_REQPROT', { features: e.profile.policy }).ok, false);
});

test('mainline: ECDSA keys load, SM2 does not (removed in 6.11), .ima keyring, later policy writes append', () => {
  const e = new Emulator({ profile: getProfile('mainline') });
  assert.equal(e.addKey('.ima', loadPublicKey(ec), ec).ok, true);
  assert.equal(e.addKey('.ima', loadPublicKey(sm2), sm2).ok, false);
  assert.equal(e.loadPolicy('measure func=BPRM_CHECK\n').ok, true);
  assert.equal(e.loadPolicy('measure func=FILE_CHECK\n').ok, true);
  assert.equal(e.rules.length, 2);
  assert.equal(getProfile('lts-6.6').signatures.sm2, true);
  assert.throws(() => getProfile('nope'), { code: 'E_PROFILE_UNKNOWN' });
  assert.deepEqual(Object.keys(PROFILES).sort(), ['debian-6.1', 'lts-5.10', 'lts-6.6', 'mainline']);
});

test('debian-6.1 quirk: EVM key + BPF LSM + file creation oopses; lsm= without bpf avoids it (real-kernel.md §5.3)', () => {
  for (const [cmdline, oops] of [
    ['ima_appraise=fix evm=fix', true],
    ['lsm=landlock,lockdown,yama,integrity,apparmor ima_appraise=fix evm=fix', false],
  ] as const) {
    const e = new Emulator({ profile: getProfile('debian-6.1'), cmdline });
    e.loadEvmHmacKey(new Uint8Array(32).fill(1));
    const r = runAccess(e, { op: 'create', path: 'x' }, 0, ext4Fs());
    assert.equal(e.oops !== null, oops, cmdline);
    assert.equal(r.outcome, oops ? 'error' : 'allowed');
  }
  // mainline has the fix
  const m = new Emulator({ profile: getProfile('mainline'), cmdline: 'evm=fix' });
  m.loadEvmHmacKey(new Uint8Array(32).fill(1));
  runAccess(m, { op: 'create', path: 'x' }, 0, ext4Fs());
  assert.equal(m.oops, null);
});
