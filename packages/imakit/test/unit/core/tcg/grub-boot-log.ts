/**
 * Test helper: a shim → grub → kernel boot log Keylime's example policy can accept, made from the
 * real OVMF log (test/fixtures/kernel/ovmf-uefi): its firmware events as they are, less the two
 * PCR 9 EV_EVENT_TAG events of OVMF's direct kernel boot (the policy refuses those), plus a second
 * boot-services application after the first (the two play shim and grub) and what grub logs: the
 * kernel command line (PCR 8) and the kernel and initrd files (PCR 9). Digests of the added events
 * are the hashes of their data, each bank its own algorithm. With the refstate
 * `keylime-policy create measured-boot --without-secureboot` would write for it.
 *
 * Keylime 7.14's own evaluation of this log and refstate (mb_check.py) is recorded in
 * test/vectors/keylime/mb-refstate-verdicts.json.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  encodeAgileEvent,
  encodeEventLog,
  parseEventLog,
  toHex,
  type TcgEvent,
} from '../../../../src/core/index.ts';
import { FIXTURES_DIR } from '../../../helpers.ts';

export const OVMF_LOG = new Uint8Array(
  readFileSync(join(FIXTURES_DIR, 'kernel/ovmf-uefi/binary_bios_measurements')),
);

const EV_IPL = 0xd;
const EV_S_CRTM_VERSION = 0x8;
const EV_EFI_PLATFORM_FIRMWARE_BLOB2 = 0x80000008;
const EV_EFI_BOOT_SERVICES_APPLICATION = 0x80000003;
export const CMDLINE = 'console=ttyS0 root=/dev/vda ro';

const digests = (data: Uint8Array): [number, Uint8Array][] => [
  [0x0004, new Uint8Array(createHash('sha1').update(data).digest())],
  [0x000b, new Uint8Array(createHash('sha256').update(data).digest())],
];
const text = (s: string) => new Uint8Array(Buffer.from(`${s}\0`, 'latin1'));

const sha256Of = (e: TcgEvent): string => `0x${toHex(e.digests.get('sha256')!)}`;

/**
 * A Keylime mb_refstate without Secure Boot for a log's firmware, as `keylime-policy create
 * measured-boot --without-secureboot` writes it: the S-CRTM version event and the platform firmware
 * blobs by their sha256 digests, empty key databases, and `kernels` as given.
 */
export function keylimeRefstate(events: readonly TcgEvent[], kernels: readonly object[] = []): object {
  return {
    has_secureboot: false,
    scrtm_and_bios: [
      {
        scrtm: { sha256: sha256Of(events.find((e) => e.type === EV_S_CRTM_VERSION)!) },
        platform_firmware: events
          .filter((e) => e.type === EV_EFI_PLATFORM_FIRMWARE_BLOB2)
          .map((e) => ({ sha256: sha256Of(e) })),
      },
    ],
    pk: [],
    kek: [],
    db: [],
    dbx: [],
    mokdig: [],
    mokxdig: [],
    kernels,
  };
}

/** The log's bytes and the matching refstate (JSON text). */
export function grubBoot(): { log: Uint8Array; refstate: string } {
  const ovmf = parseEventLog(OVMF_LOG);
  const raws: Uint8Array[] = [];
  for (const e of ovmf.events) {
    if (e.pcr === 9) continue; // OVMF's EV_EVENT_TAGs
    raws.push(e.raw);
    if (e.type === EV_EFI_BOOT_SERVICES_APPLICATION)
      raws.push(encodeAgileEvent(4, EV_EFI_BOOT_SERVICES_APPLICATION, digests(text('grubx64.efi')), e.data));
  }
  for (const [pcr, s] of [
    [8, `kernel_cmdline: ${CMDLINE}`],
    [9, '/boot/vmlinuz-6.1.0'],
    [9, '/boot/initrd.img-6.1.0'],
  ] as const)
    raws.push(encodeAgileEvent(pcr, EV_IPL, digests(text(s)), text(s)));
  const log = encodeEventLog({
    ...ovmf,
    events: parseEventLog(new Uint8Array(Buffer.concat([ovmf.header!.raw, ...raws]))).events,
  });
  const events = parseEventLog(log).events;
  const sha = (pred: (e: TcgEvent) => boolean) => sha256Of(events.find(pred)!);
  const apps = events.filter((e) => e.type === EV_EFI_BOOT_SERVICES_APPLICATION);
  const refstate = keylimeRefstate(events, [
    {
      shim_authcode_sha256: sha256Of(apps[0]!),
      grub_authcode_sha256: sha256Of(apps[1]!),
      vmlinuz_plain_sha256: sha((e) => e.pcr === 9 && /vmlinuz/.test(Buffer.from(e.data).toString('latin1'))),
      initrd_plain_sha256: sha((e) => e.pcr === 9 && /initrd/.test(Buffer.from(e.data).toString('latin1'))),
      kernel_cmdline: CMDLINE.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&'),
    },
  ]);
  return { log, refstate: JSON.stringify(refstate) };
}
