/** Times in the viewer's own time zone and locale; digests shortened for tables, whole on hover. */

const dateTime = new Intl.DateTimeFormat(undefined, {
  year: 'numeric',
  month: 'short',
  day: 'numeric',
  hour: '2-digit',
  minute: '2-digit',
  second: '2-digit',
  timeZoneName: 'short',
});

export const zone = (): string => Intl.DateTimeFormat().resolvedOptions().timeZone;

export function when(iso: string | null | undefined): string {
  if (iso === null || iso === undefined) return 'never';
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : dateTime.format(d);
}

export function ago(iso: string | null | undefined, now = Date.now()): string {
  if (iso === null || iso === undefined) return 'never';
  const s = Math.round((now - new Date(iso).getTime()) / 1000);
  if (s < 0) return 'just now';
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  if (s < 86400) return `${Math.round(s / 3600)} h ago`;
  return `${Math.round(s / 86400)} d ago`;
}

export function short(digest: string | null | undefined, n = 12): string {
  if (digest === null || digest === undefined) return '';
  const i = digest.indexOf(':');
  const hex = i >= 0 ? digest.slice(i + 1) : digest;
  const pre = i >= 0 ? digest.slice(0, i + 1) : '';
  return hex.length > n ? `${pre}${hex.slice(0, n)}…` : digest;
}

export const num = (n: number): string => n.toLocaleString();

export function bytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}

export function provenanceText(p: Record<string, string> | null | undefined): string {
  if (p === null || p === undefined) return 'unknown provenance';
  const parts = [p.kind];
  if (p.name !== undefined) parts.push(p.name + (p.version !== undefined ? ` ${p.version}` : ''));
  if (p.arch !== undefined) parts.push(p.arch);
  if (p.image !== undefined) parts.push(p.image);
  if (p.layer !== undefined) parts.push(`layer ${short(p.layer)}`);
  if (p.source !== undefined) parts.push(`from ${p.source}`);
  return parts.join(' · ');
}
