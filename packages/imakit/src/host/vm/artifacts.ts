/**
 * The guest's output (real-kernel.md §3.3, §4.4): a tar stream written onto the raw OUT disk,
 * unpacked on the host, and the files in it parsed into typed values. Files in the output
 * directory (all written by the guest unless marked):
 *
 * | file | content |
 * | --- | --- |
 * | `binary_runtime_measurements`, `ascii_runtime_measurements` | the lists |
 * | `runtime_measurements_count`, `violations` | counters |
 * | `pcrs-<bank>.txt` | `PCR-NN: <hex>` lines (evmctl `--pcrs` format, formats.md §2.2) |
 * | `binary_bios_measurements` | the TCG event log |
 * | `stat.txt`, `xattrs.txt`, `lsattr.txt` | per-file state (stat, getfattr hex dump, generations) |
 * | `accesses.txt`, `access-N.err` | workload exit statuses and stderr |
 * | `dmesg.txt`, `keys.log`, `guest.log`, `proc-keys.txt`, `cmdline.txt`, `uname.txt`, `lsm.txt`, `evm-state`, `policy-status`, `policy.err` | kernel state |
 * | `DONE` | written last by the guest |
 * | `console.log`, `run.json`, `result.json`, `policy.txt` | written by the host |
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ImakitError } from '../../errors.ts';
import { runTool } from './process.ts';
import type { FileState } from './types.ts';

/** Unpack the OUT disk into `dir`. Returns false when the disk holds no complete output. */
export async function extractOutDisk(img: string, dir: string): Promise<boolean> {
  const r = await runTool('tar', ['-xf', img, '-C', dir, '--no-same-owner', '--no-overwrite-dir']);
  if (r.status !== 0 && !existsSync(join(dir, 'DONE'))) return false;
  return existsSync(join(dir, 'DONE'));
}

const read = (dir: string, name: string): string | null => {
  const p = join(dir, name);
  return existsSync(p) ? readFileSync(p, 'utf8') : null;
};

/** Bytes of an output file (empty when absent). */
export function readBytes(dir: string, name: string): Uint8Array {
  const p = join(dir, name);
  return existsSync(p) ? new Uint8Array(readFileSync(p)) : new Uint8Array(0);
}

/** Text of an output file (empty when absent). */
export function readText(dir: string, name: string): string {
  return read(dir, name) ?? '';
}

/** Parse `PCR-NN: <hex>` lines into 24 lowercase hex strings. */
export function parsePcrFile(text: string): string[] {
  const pcrs: string[] = [];
  for (const line of text.split('\n')) {
    const m = /^PCR-(\d\d): ([0-9A-Fa-f]*)$/.exec(line.trim());
    if (m?.[1] !== undefined && m[2] !== undefined) pcrs[Number(m[1])] = m[2].toLowerCase();
  }
  // `some` skips holes: check every index explicitly
  if (
    pcrs.length !== 24 ||
    Array.from({ length: 24 }, (_, i) => pcrs[i]).some((p) => p === undefined || p === '')
  )
    throw new ImakitError('E_PCR_FILE', 'the guest returned an incomplete PCR file');
  return pcrs;
}

/** PCRs of every bank the guest found (`pcrs-<bank>.txt`). */
export function readPcrs(dir: string, banks: readonly string[]): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const b of banks) {
    const t = read(dir, `pcrs-${b}.txt`);
    if (t !== null) out[b] = parsePcrFile(t);
  }
  return out;
}

/** Undo getfattr's octal escapes in path names (`\040` for a space, `\\` for a backslash). */
function unescapeGetfattr(s: string): string {
  const bytes: number[] = [];
  const raw = Buffer.from(s, 'latin1');
  for (let i = 0; i < raw.length; i++) {
    const c = raw[i] as number;
    if (c === 0x5c && i + 3 < raw.length + 0 && /^[0-7]{3}$/.test(s.slice(i + 1, i + 4))) {
      bytes.push(parseInt(s.slice(i + 1, i + 4), 8));
      i += 3;
    } else if (c === 0x5c && s[i + 1] === '\\') {
      bytes.push(0x5c);
      i += 1;
    } else bytes.push(c);
  }
  return Buffer.from(bytes).toString('utf8');
}

const normPath = (p: string): string => (p === '.' ? '' : p.replace(/^\.\//, ''));

/** Parse `getfattr -R -d -m - -e hex` output: path → name → hex (no 0x). */
export function parseGetfattr(text: string): Map<string, Record<string, string>> {
  const out = new Map<string, Record<string, string>>();
  let cur: Record<string, string> | null = null;
  for (const line of text.split('\n')) {
    if (line.startsWith('# file: ')) {
      cur = {};
      out.set(normPath(unescapeGetfattr(line.slice(8))), cur);
      continue;
    }
    const eq = line.indexOf('=');
    if (cur === null || eq <= 0) continue;
    const v = line.slice(eq + 1);
    cur[line.slice(0, eq)] = v.startsWith('0x')
      ? v.slice(2).toLowerCase()
      : Buffer.from(v.replace(/^"|"$/g, '')).toString('hex');
  }
  return out;
}

/** Parse the guest's `stat -c '%i %u %g %f %s %n'` lines and join xattrs and generations. */
export function parseFileStates(statText: string, xattrText: string, lsattrText: string): FileState[] {
  const xattrs = parseGetfattr(xattrText);
  const gens = new Map<string, number>();
  for (const line of lsattrText.split('\n')) {
    const m = /^\s*(\d+)\s+\S+\s+(.*)$/.exec(line);
    if (m?.[1] !== undefined && m[2] !== undefined) gens.set(normPath(m[2]), Number(m[1]));
  }
  const files: FileState[] = [];
  for (const line of statText.split('\n')) {
    const m = /^(\d+) (\d+) (\d+) ([0-9a-f]+) (\d+) (.*)$/.exec(line);
    if (m === null) continue;
    const path = normPath(m[6] ?? '');
    const generation = gens.get(path);
    files.push(
      Object.freeze({
        path,
        ino: Number(m[1]),
        uid: Number(m[2]),
        gid: Number(m[3]),
        mode: parseInt(m[4] ?? '0', 16),
        size: Number(m[5]),
        ...(generation !== undefined ? { generation } : {}),
        xattrs: Object.freeze(xattrs.get(path) ?? {}),
      }),
    );
  }
  return files;
}

/** `accesses.txt` lines (`<index> <status>`). */
export function parseAccessStatuses(text: string): Map<number, number> {
  const out = new Map<number, number>();
  for (const line of text.split('\n')) {
    const m = /^(\d+) (\d+)$/.exec(line.trim());
    if (m?.[1] !== undefined && m[2] !== undefined) out.set(Number(m[1]), Number(m[2]));
  }
  return out;
}
