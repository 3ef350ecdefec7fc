/**
 * Test helper: run `tpm2_eventlog` (tpm2-tools) on a log file and read its YAML: per-event
 * PCR index, type name and digests, and the final `pcrs:` per bank. Only the keys we compare
 * are parsed (the YAML is line-oriented and regular).
 */
import { run } from '../../../helpers.ts';

export interface Tpm2Event {
  num: number;
  pcr: number;
  type: string;
  digests: Map<string, string>;
}

export interface Tpm2EventlogOutput {
  status: number;
  stderr: string;
  events: Tpm2Event[];
  pcrs: Map<string, Map<number, string>>;
}

/** Run tpm2_eventlog on `path` and parse its output. */
export function tpm2Eventlog(path: string): Tpm2EventlogOutput {
  const r = run('tpm2_eventlog', [path]);
  const events: Tpm2Event[] = [];
  const pcrs = new Map<string, Map<number, string>>();
  let inPcrs = false;
  let bank: string | undefined;
  let alg: string | undefined;
  for (const line of r.stdout.split('\n')) {
    if (line === 'pcrs:') {
      inPcrs = true;
      continue;
    }
    if (inPcrs) {
      const b = /^ {2}([a-z0-9_]+):\s*$/.exec(line);
      if (b) {
        bank = b[1]!;
        pcrs.set(bank, new Map());
        continue;
      }
      const p = /^ {4}(\d+)\s*:\s*0x([0-9a-fA-F]+)/.exec(line);
      if (p && bank) pcrs.get(bank)!.set(Number(p[1]), p[2]!.toLowerCase());
      continue;
    }
    let m = /^- EventNum: (\d+)/.exec(line);
    if (m) {
      events.push({ num: Number(m[1]), pcr: -1, type: '', digests: new Map() });
      continue;
    }
    const e = events[events.length - 1];
    if (!e) continue;
    if ((m = /^ {2}PCRIndex: (\d+)/.exec(line))) e.pcr = Number(m[1]);
    else if ((m = /^ {2}EventType: (\S+)/.exec(line))) e.type = m[1]!;
    else if ((m = /^ {2}- AlgorithmId: (\S+)/.exec(line))) alg = m[1]!;
    else if ((m = /^ {4}Digest: "([0-9a-f]+)"/.exec(line)) && alg) e.digests.set(alg, m[1]!);
    else if ((m = /^ {2}Digest: "([0-9a-f]+)"/.exec(line))) e.digests.set('sha1', m[1]!);
  }
  return { status: r.status, stderr: r.stderr, events, pcrs };
}
