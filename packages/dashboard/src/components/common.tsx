/** Pieces every page uses: data loading with errors shown as the API gave them, badges, paging. */
import { createContext, type ComponentChildren } from 'preact';
import { useCallback, useContext, useEffect, useRef, useState } from 'preact/hooks';
import { ApiError, get } from '../api.ts';
import { provenanceText } from '../format.ts';
import type { Provenance } from '../types.ts';

export interface Session {
  readonly role: string;
  /** the token may read but not change anything */
  readonly readOnly: boolean;
  /** bumped by the live stream when the fleet changed: pages reload */
  readonly tick: number;
}
export const SessionContext = createContext<Session>({ role: 'read', readOnly: true, tick: 0 });
export const useSession = (): Session => useContext(SessionContext);

export interface Loaded<T> {
  data: T | undefined;
  error: ApiError | undefined;
  loading: boolean;
  reload: () => void;
}

/**
 * GET `path` (again whenever it or `tick` changes). While the same path reloads its last answer
 * stays shown; an answer or error for another path never is (a page must not show one agent's data
 * under another's URL).
 */
export function useApi<T>(path: string | null, tick = 0): Loaded<T> {
  const [data, setData] = useState<{ key: string; value: T } | undefined>(undefined);
  const [error, setError] = useState<{ key: string; value: ApiError } | undefined>(undefined);
  const [loading, setLoading] = useState(false);
  const [n, setN] = useState(0);
  const seq = useRef(0);
  useEffect(() => {
    if (path === null) return;
    const my = ++seq.current;
    setLoading(true);
    get<T>(path).then(
      (d) => {
        if (my !== seq.current) return;
        setData({ key: path, value: d });
        setError(undefined);
        setLoading(false);
      },
      (e: unknown) => {
        if (my !== seq.current) return;
        setError({ key: path, value: e instanceof ApiError ? e : new ApiError(0, 'CLIENT', String(e)) });
        setData(undefined);
        setLoading(false);
      },
    );
  }, [path, tick, n]);
  const reload = useCallback(() => setN((x) => x + 1), []);
  return {
    data: data?.key === path ? data.value : undefined,
    error: error?.key === path ? error.value : undefined,
    loading,
    reload,
  };
}

export function ErrorBox({ error, what }: { error: ApiError | undefined; what?: string }) {
  if (error === undefined) return null;
  return (
    <div class="error" role="alert">
      <strong>{what ?? 'The verifier refused'}:</strong> {error.message}{' '}
      <code class="code" title="error code">
        {error.code}
      </code>
      {error.status > 0 && <span class="muted"> (HTTP {error.status})</span>}
    </div>
  );
}

const STATE_TITLE: Record<string, string> = {
  passing: 'the last attestation passed',
  failing: 'the last attestation failed',
  stale: 'passing, but not attested within two intervals: the verdict is out of date',
  unenrolled: 'no attestation key enrolled yet',
  paused: 'paused by an operator: not attested',
};

export function StateBadge({ state, stale }: { state: string; stale?: boolean }) {
  return (
    <span class={`badge s-${state}`} title={STATE_TITLE[state] ?? state}>
      {state}
      {stale === true && state !== 'stale' && <span title="not attested within two intervals"> · stale</span>}
    </span>
  );
}

export function Pager({
  offset,
  limit,
  total,
  go,
}: {
  offset: number;
  limit: number;
  total: number;
  go: (offset: number) => void;
}) {
  const page = Math.floor(offset / limit) + 1;
  const pages = Math.max(1, Math.ceil(total / limit));
  return (
    <nav class="pager" aria-label="pages">
      <button type="button" disabled={offset === 0} onClick={() => go(Math.max(0, offset - limit))}>
        ← previous
      </button>
      <span>
        page {page} of {pages} · {total.toLocaleString()} rows
      </span>
      <button type="button" disabled={offset + limit >= total} onClick={() => go(offset + limit)}>
        next →
      </button>
    </nav>
  );
}

/**
 * Keyboard navigation for table rows: ↑/↓ (or j/k) move between rows, Home/End to the ends,
 * Enter opens the row's first link. Rows carry tabIndex 0 and the `row` class.
 */
export function onRowKeys(e: KeyboardEvent): void {
  const row = (e.target as HTMLElement).closest('tr.row') as HTMLTableRowElement | null;
  if (row === null) return;
  const rows = [...(row.parentElement?.querySelectorAll<HTMLTableRowElement>('tr.row') ?? [])];
  const i = rows.indexOf(row);
  let to: HTMLTableRowElement | undefined;
  if (e.key === 'ArrowDown' || e.key === 'j') to = rows[i + 1];
  else if (e.key === 'ArrowUp' || e.key === 'k') to = rows[i - 1];
  else if (e.key === 'Home') to = rows[0];
  else if (e.key === 'End') to = rows[rows.length - 1];
  else if (e.key === 'Enter' && e.target === row) {
    row.querySelector('a')?.click();
    e.preventDefault();
    return;
  } else return;
  e.preventDefault();
  to?.focus();
}

export function Section({
  title,
  children,
  id,
}: {
  title: string;
  children: ComponentChildren;
  id?: string;
}) {
  return (
    <section class="card" id={id} aria-labelledby={id === undefined ? undefined : `${id}-h`}>
      <h2 id={id === undefined ? undefined : `${id}-h`}>{title}</h2>
      {children}
    </section>
  );
}

/** A button for an action that changes state: disabled, with the reason, for a read-only token. */
export function ActionButton(props: {
  onClick: () => void | Promise<void>;
  children: ComponentChildren;
  danger?: boolean;
  busy?: boolean;
  disabled?: boolean;
}) {
  const { readOnly } = useSession();
  return (
    <button
      type="button"
      class={props.danger === true ? 'danger' : undefined}
      disabled={readOnly || props.busy === true || props.disabled === true}
      title={readOnly ? 'read-only token: this action needs the operate role' : undefined}
      onClick={() => void props.onClick()}
    >
      {props.children}
    </button>
  );
}

/** A path's allowed digests in a reference set, each with where it came from. */
export function ReferenceDigests({
  digests,
}: {
  digests: readonly { algo: string; digest: string; provenance: Provenance | null }[];
}) {
  return (
    <ul>
      {digests.map((r) => (
        <li>
          <span class="digest">
            {r.algo}:{r.digest}
          </span>{' '}
          <span class="muted">— {provenanceText(r.provenance)}</span>
        </li>
      ))}
    </ul>
  );
}
