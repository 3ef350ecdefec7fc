/**
 * The shell the guest runs as `/init` (busybox ash), generated from a `VmSpec`
 * (real-kernel.md §4). It loads modules, keys and the EVM key, writes the policy once, mounts the
 * data disk, runs the workload with a kernel-log marker around every access, collects the
 * artifacts in the order of §4.4 (lists, counters, PCRs, then per-file state, generations last
 * because `lsattr` opens files), and streams everything as tar onto the raw OUT disk.
 *
 * Every value that reaches the shell is single-quoted (`shq`); paths travel in variables.
 */
import { ImakitError } from '../../errors.ts';
import type { Access, VmSpec } from './types.ts';

/** Where the data disk is mounted in the guest. */
export const GUEST_DATA = '/data';

/** Marker prefix written to /dev/kmsg; audit.ts splits the kernel log on it. */
export const MARK = 'IMAKIT-MARK';

/** Quote a string for the shell: `'…'` with embedded quotes escaped. */
export function shq(s: string): string {
  if (s.includes('\0')) throw new ImakitError('E_USAGE', 'a NUL byte cannot be passed to the guest shell');
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** Check a workload path: relative, inside the data disk. */
export function checkAccessPath(p: string): void {
  if (p === '' || p.startsWith('/') || p.split('/').includes('..'))
    throw new ImakitError(
      'E_USAGE',
      `workload path must be relative to the data disk root: ${JSON.stringify(p)}`,
    );
}

const DEFAULT_CONTENT = 'imakit was here\n';

/** The command (run by `sh -c`, path in $P) for one access. */
function accessCommand(a: Access): string {
  switch (a.op) {
    case 'exec':
      return '"$P" >/dev/null';
    case 'read':
      return 'cat "$P" >/dev/null';
    case 'mmap-exec':
      // ld.so maps the program itself with PROT_EXEC: MMAP_CHECK, not BPRM_CHECK.
      return '/lib64/ld-linux-x86-64.so.2 "$P" --version >/dev/null';
    case 'write':
      return 'printf %s "$C" >>"$P"';
    case 'create':
      return 'printf %s "$C" >"$P"';
    case 'write-then-read':
      return 'printf %s "$C" >>"$P" && cat "$P" >/dev/null';
    case 'open-writers':
      // writer open first, then a read: the violation entry comes before the measurement (§7)
      return 'exec 3>>"$P" || exit $?; cat "$P" >/dev/null; r=$?; exec 3>&-; exit $r';
    case 'tomtou':
      // reader open (measured) first, then a write open while it is still open (§7)
      return 'exec 3<"$P" || exit $?; printf %s "$C" >>"$P"; r=$?; exec 3<&-; exit $r';
    case 'chmod':
      return 'chmod "$M" "$P"';
    case 'chown':
      return 'chown "$O" "$P"';
    case 'setxattr':
      return 'setfattr -n "$N" -v "$V" "$P"';
    case 'rmxattr':
      return 'setfattr -x "$N" "$P"';
    default: {
      const never: never = a.op;
      throw new ImakitError('E_USAGE', `unknown workload op ${String(never)}`);
    }
  }
}

/** Check one access of a workload (also run by `imakit vm run` before anything boots). */
export function checkAccess(a: Access, i: number): void {
  checkAccessPath(a.path);
  const uid = a.uid ?? 0;
  if (uid !== 0 && uid !== 1000)
    throw new ImakitError('E_USAGE', `workload access ${i}: uid must be 0 or 1000 (the guest's users)`);
  if (a.op === 'chmod' && !/^[0-7]{3,4}$/.test(a.mode ?? ''))
    throw new ImakitError('E_USAGE', `workload access ${i}: chmod needs an octal mode`);
  if (a.op === 'chown' && !/^\d+:\d+$/.test(a.owner ?? ''))
    throw new ImakitError('E_USAGE', `workload access ${i}: chown needs owner uid:gid`);
  if ((a.op === 'setxattr' || a.op === 'rmxattr') && !a.name)
    throw new ImakitError('E_USAGE', `workload access ${i}: ${a.op} needs a name`);
  if (a.op === 'setxattr' && a.value === undefined)
    throw new ImakitError('E_USAGE', `workload access ${i}: setxattr needs a value`);
}

/** Shell lines for the workload. */
function workloadLines(workload: readonly Access[]): string[] {
  const out: string[] = [];
  workload.forEach((a, i) => {
    checkAccess(a, i);
    const vars = [
      `P=${shq(`${GUEST_DATA}/${a.path}`)}`,
      `C=${shq(a.content ?? DEFAULT_CONTENT)}`,
      `M=${shq(a.mode ?? '')}`,
      `O=${shq(a.owner ?? '')}`,
      `N=${shq(a.name ?? '')}`,
      `V=${shq(a.value ?? '')}`,
    ];
    out.push(`${vars.join('; ')}; access ${i} ${a.uid ?? 0} ${shq(accessCommand(a))}`);
  });
  return out;
}

/** Everything the initramfs's /extra must hold for `spec` (names only; initramfs.ts writes them). */
export interface GuestInputs {
  readonly imaCertCount: number;
  readonly evmCertCount: number;
  readonly imaV1KeyCount: number;
  readonly hasEvmKey: boolean;
  /** `load` an imakit-made blob (default) or let the guest kernel create the key (`new`) */
  readonly evmKeyMode?: 'load' | 'new';
  /** certificates /extra/ima-late-cert-N.der added to `_ima` after the policy load */
  readonly lateImaCertCount?: number;
  readonly hasPolicy: boolean;
  readonly hasData: boolean;
  readonly modules: readonly string[];
}

/** The /init script for `spec`. */
export function guestScript(spec: VmSpec, inputs: GuestInputs): string {
  // ext4 has i_version on by default since 5.19 and this kernel's ext4 rejects `-o iversion`
  // coming from busybox mount as a data string; re-measurement after changes works without it.
  const mountOptions = spec.mountOptions ?? 'rw';
  if (!/^[a-z0-9_,=]*$/.test(mountOptions)) throw new ImakitError('E_USAGE', 'invalid mount options');
  const generations = spec.generations ?? true;
  return `#!/bin/busybox sh
# generated by imakit (src/host/vm/guest-script.ts)
/bin/busybox --install -s /bin
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
export LD_LIBRARY_PATH=/lib/x86_64-linux-gnu
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
exec </dev/console >/dev/console 2>&1
mount -t securityfs securityfs /sys/kernel/security
mount -t tmpfs tmpfs /tmp
mkdir -p /out ${GUEST_DATA}
mount -t tmpfs tmpfs /out
# audit records reach the log through printk_ratelimit(): let none be dropped (§4.1)
echo 0 >/proc/sys/kernel/printk_ratelimit
echo 10000 >/proc/sys/kernel/printk_ratelimit_burst
mark() { echo "${MARK} $*" >/dev/kmsg; }
log() { echo "$*" >>/out/guest.log; }
finish() {
  mark finish
  dmesg >/out/dmesg.txt
  echo DONE >/out/DONE
  if [ -n "$OUT" ]; then tar -cf "$OUT" -C /out . ; fi
  sync
  poweroff -f
  sleep 30
}
now() { cut -d' ' -f1 /proc/uptime; }
log "start $(now)"

# modules (real-kernel.md §4.2): the virtio/ext4 chain, then what the scenario asked for
for m in ${[...inputs.modules].map(shq).join(' ')}; do
  insmod "/lib/modules/$m.ko" >>/out/guest.log 2>&1 || log "insmod $m failed"
done

OUT=; DATA=
for d in /sys/block/vd*; do
  [ -e "$d/serial" ] || continue
  case "$(cat "$d/serial")" in
    OUT) OUT=/dev/\${d##*/} ;;
    DATA) DATA=/dev/\${d##*/} ;;
  esac
done
log "out=$OUT data=$DATA"
[ -n "$OUT" ] || { echo "imakit: no OUT disk" >/dev/console; finish; }

# keys (§2.3, §5): _ima (no .ima keyring on this kernel), _evm, the EVM HMAC key
IMA=$(keyctl newring _ima @u)
echo "_ima $IMA" >>/out/keys.log
i=0
while [ $i -lt ${inputs.imaCertCount} ]; do
  if id=$(keyctl padd asymmetric "" "$IMA" </extra/ima-cert-$i.der 2>/tmp/kerr); then
    echo "ima-cert-$i ok $id" >>/out/keys.log
  else echo "ima-cert-$i failed $(cat /tmp/kerr)" >>/out/keys.log; fi
  i=$((i+1))
done
i=0
while [ $i -lt ${inputs.imaV1KeyCount} ]; do
  if evmctl import --rsa /extra/ima-v1-$i.pem "$IMA" >/tmp/kout 2>&1; then
    echo "ima-v1-$i ok $(tail -n1 /tmp/kout)" >>/out/keys.log
  else echo "ima-v1-$i failed $(cat /tmp/kout)" >>/out/keys.log; fi
  i=$((i+1))
done
if [ ${inputs.evmCertCount} -gt 0 ] || [ ${inputs.hasEvmKey ? 1 : 0} = 1 ]; then
  EVMR=$(keyctl newring _evm @u)
  echo "_evm $EVMR" >>/out/keys.log
fi
i=0
while [ $i -lt ${inputs.evmCertCount} ]; do
  if id=$(keyctl padd asymmetric "" "$EVMR" </extra/evm-cert-$i.der 2>/tmp/kerr); then
    echo "evm-cert-$i ok $id" >>/out/keys.log
  else echo "evm-cert-$i failed $(cat /tmp/kerr)" >>/out/keys.log; fi
  i=$((i+1))
done
if [ ${inputs.hasEvmKey ? 1 : 0} = 1 ]; then
  keyctl padd user kmk @u </extra/kmk.bin >>/out/keys.log 2>&1 || log "kmk failed"
  # load: a blob made on the host; new: the kernel makes a random key (real-kernel.md §5.2)
  EKCMD="${(inputs.evmKeyMode ?? 'load') === 'new' ? 'new $(cat /extra/evm-key.new)' : 'load $(cat /extra/evm-key.blob)'}"
  if EK=$(keyctl add encrypted evm-key "$EKCMD" @u 2>/tmp/kerr); then
    echo "evm-key ok $EK" >>/out/keys.log
    # the kernel's export of the key (what /etc/keys/evm-key holds): host-side decryption checks it
    keyctl pipe "$EK" >/out/evm-key.exported 2>>/out/guest.log || log "evm-key pipe failed"
  else echo "evm-key failed $(cat /tmp/kerr)" >>/out/keys.log; fi
fi
if [ ${inputs.evmCertCount} -gt 0 ]; then echo 2 >/sys/kernel/security/evm 2>>/out/guest.log || log "evm x509 init failed"; fi
if [ ${inputs.hasEvmKey ? 1 : 0} = 1 ]; then echo 1 >/sys/kernel/security/evm 2>>/out/guest.log || log "evm hmac init failed"; fi
cat /sys/kernel/security/evm >/out/evm-state 2>/dev/null

# policy: written once (CONFIG_IMA_WRITE_POLICY is not set); one write() of the whole text
POLICY_OK=1
if [ ${inputs.hasPolicy ? 1 : 0} = 1 ]; then
  mark policy-begin
  if printf '%s\\n' "$(cat /extra/policy)" >/sys/kernel/security/ima/policy 2>/out/policy.err; then
    echo loaded >/out/policy-status
  else
    echo rejected >/out/policy-status; POLICY_OK=0
  fi
  mark policy-end
fi
# keys added after the policy load: KEY_CHECK measures them at once (§7)
i=0
while [ $i -lt ${inputs.lateImaCertCount ?? 0} ]; do
  if id=$(keyctl padd asymmetric "" "$IMA" </extra/ima-late-cert-$i.der 2>/tmp/kerr); then
    echo "ima-late-cert-$i ok $id" >>/out/keys.log
  else echo "ima-late-cert-$i failed $(cat /tmp/kerr)" >>/out/keys.log; fi
  i=$((i+1))
done

if [ ${inputs.hasData ? 1 : 0} = 1 ]; then
  if [ -z "$DATA" ] || ! mount -t ext4 -o ${mountOptions} "$DATA" ${GUEST_DATA} 2>>/out/guest.log; then
    echo "imakit: cannot mount the data disk" >/dev/console; log "data mount failed"; echo failed >/out/data-mount
  fi
fi

# workload: one marker around each access; audit records are printed by kauditd, so wait a moment
access() {
  idx=$1; uid=$2; cmd=$3
  export P C M O N V
  mark "access $idx begin"
  if [ "$uid" = 0 ]; then sh -c "$cmd" >/dev/null 2>/tmp/aerr; rc=$?
  else su -p -s /bin/sh user -c "$cmd" >/dev/null 2>/tmp/aerr; rc=$?; fi
  usleep 20000
  mark "access $idx end"
  echo "$idx $rc" >>/out/accesses.txt
  cp /tmp/aerr /out/access-$idx.err
}
log "workload $(now)"
if [ "$POLICY_OK" = 1 ]; then
${workloadLines(spec.workload ?? []).join('\n')}
:
fi
log "collect $(now)"
mark collect
# §4.4: binary list, ascii list, counters, then PCRs, nothing measured in between
S=/sys/kernel/security
cat $S/ima/binary_runtime_measurements >/out/binary_runtime_measurements
cat $S/ima/ascii_runtime_measurements >/out/ascii_runtime_measurements
cat $S/ima/runtime_measurements_count >/out/runtime_measurements_count
cat $S/ima/violations >/out/violations
for b in /sys/class/tpm/tpm0/pcr-*; do
  [ -d "$b" ] || continue
  bank=\${b##*pcr-}; n=0
  while [ $n -lt 24 ]; do printf 'PCR-%02d: %s\\n' $n "$(cat $b/$n)"; n=$((n+1)); done >/out/pcrs-$bank.txt
done
cat $S/tpm0/binary_bios_measurements >/out/binary_bios_measurements 2>/dev/null
cat /sys/class/tpm/tpm0/tpm_version_major >/out/tpm_version_major 2>/dev/null
cat /proc/keys >/out/proc-keys.txt
cat /proc/cmdline >/out/cmdline.txt
uname -a >/out/uname.txt
cat $S/lsm >/out/lsm.txt
if grep -q " ${GUEST_DATA} " /proc/mounts; then
  # stat and getfattr do not open files (§4.4)
  ( cd ${GUEST_DATA} && find . -xdev | while IFS= read -r f; do stat -c '%i %u %g %f %s %n' "$f"; done ) >/out/stat.txt 2>>/out/guest.log
  ( cd ${GUEST_DATA} && getfattr -R -P -d -m - -e hex . ) >/out/xattrs.txt 2>>/out/guest.log
  if [ ${generations ? 1 : 0} = 1 ]; then
    # lsattr opens every file: a FILE_CHECK event, so it comes after everything else (§4.4 pitfall)
    mark generations
    ( cd ${GUEST_DATA} && find . -xdev -type f | while IFS= read -r f; do lsattr -v "$f"; done ) >/out/lsattr.txt 2>&1
  fi
  umount ${GUEST_DATA} 2>>/out/guest.log
fi
log "end $(now)"
finish
`;
}
