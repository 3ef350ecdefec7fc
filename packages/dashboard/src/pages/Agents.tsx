/**
 * The fleet table: filtered, sorted and paged by the verifier (GET /v1/dashboard/agents), so 10,000
 * agents cost one page of rows. Every filter, the sort and the page are in the URL.
 */
import { useState } from 'preact/hooks';
import { ErrorBox, Pager, StateBadge, onRowKeys, useApi, useSession } from '../components/common.tsx';
import { href, navigate, type Route } from '../router.ts';
import { qs } from '../api.ts';
import { ago, short, when } from '../format.ts';
import type { AgentRow, RefSetListItem } from '../types.ts';

const LIMIT = 50;
const COLUMNS = [
  ['name', 'agent'],
  ['state', 'state'],
  ['referenceSet', 'reference set'],
  ['lastAttestedAt', 'last attestation'],
  ['cause', 'cause'],
] as const;

export function Agents({ route }: { route: Route }) {
  const { tick } = useSession();
  const q = Object.fromEntries(route.query);
  const sort = q.sort ?? 'name';
  const order = q.order === 'desc' ? 'desc' : 'asc';
  const offset = Number(q.offset ?? 0) || 0;
  const set = (patch: Record<string, string | number | undefined>) =>
    navigate(href(['agents'], { ...q, offset: undefined, ...patch }), true);
  const path = `/v1/dashboard/agents${qs({
    state: q.state,
    q: q.q,
    referenceSet: q.refs,
    code: q.code,
    path: q.path,
    sort,
    order,
    limit: LIMIT,
    offset,
  })}`;
  const r = useApi<{ total: number; agents: AgentRow[] }>(path, tick);
  const sets = useApi<{ referenceSets: RefSetListItem[] }>('/v1/reference-sets');
  const [text, setText] = useState(q.q ?? '');
  return (
    <div class="page">
      <h1>Agents</h1>
      <form
        class="filters"
        role="search"
        onSubmit={(e) => {
          e.preventDefault();
          set({ q: text });
        }}
      >
        <label>
          name or id{' '}
          <input type="search" value={text} onInput={(e) => setText((e.target as HTMLInputElement).value)} />
        </label>
        <label>
          state{' '}
          <select
            value={q.state ?? ''}
            onChange={(e) => set({ state: (e.target as HTMLSelectElement).value })}
          >
            <option value="">any</option>
            {['passing', 'failing', 'stale', 'unenrolled', 'paused'].map((s) => (
              <option value={s}>{s}</option>
            ))}
          </select>
        </label>
        <label>
          reference set{' '}
          <select value={q.refs ?? ''} onChange={(e) => set({ refs: (e.target as HTMLSelectElement).value })}>
            <option value="">any</option>
            <option value="none">none</option>
            {sets.data?.referenceSets.map((s) => (
              <option value={s.id}>{s.name}</option>
            ))}
          </select>
        </label>
        <button type="submit">filter</button>
        {(q.code !== undefined || q.path !== undefined) && (
          <span class="chip">
            cause: <code>{q.code}</code> {q.path}{' '}
            <button
              type="button"
              aria-label="clear cause filter"
              onClick={() => set({ code: undefined, path: undefined })}
            >
              ×
            </button>
          </span>
        )}
      </form>
      <ErrorBox error={r.error} />
      {r.data !== undefined && (
        <>
          <div class="table-wrap">
            <table class="agents" aria-busy={r.loading}>
              <thead>
                <tr>
                  {COLUMNS.map(([key, label]) => (
                    <th
                      scope="col"
                      aria-sort={sort === key ? (order === 'asc' ? 'ascending' : 'descending') : 'none'}
                    >
                      <button
                        type="button"
                        class="sort"
                        onClick={() =>
                          set({ sort: key, order: sort === key && order === 'asc' ? 'desc' : 'asc' })
                        }
                      >
                        {label}
                        {sort === key ? (order === 'asc' ? ' ▲' : ' ▼') : ''}
                      </button>
                    </th>
                  ))}
                </tr>
              </thead>
              <tbody onKeyDown={onRowKeys}>
                {r.data.agents.map((a) => (
                  <tr class="row" tabIndex={0} data-agent={a.id}>
                    <td>
                      <a href={href(['agents', a.id])}>{a.name}</a>
                      {a.name !== a.id && <div class="muted small">{a.id}</div>}
                    </td>
                    <td>
                      <StateBadge state={a.state} stale={a.stale} />
                    </td>
                    <td>
                      {a.referenceSet === null ? (
                        <span class="muted">none</span>
                      ) : (
                        <a href={href(['refs', a.referenceSet])} title={a.referenceSet}>
                          {a.referenceSetName ?? short(a.referenceSet)}
                        </a>
                      )}
                    </td>
                    <td title={when(a.lastAttestedAt)}>{ago(a.lastAttestedAt)}</td>
                    <td class="why">
                      {a.cause !== null && (
                        <a href={href(['agents', a.id], { tab: 'failure' })}>
                          <code>{a.cause.code}</code> {a.cause.path}
                        </a>
                      )}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
          {r.data.agents.length === 0 && <p class="muted">No agent matches.</p>}
          <Pager offset={offset} limit={LIMIT} total={r.data.total} go={(o) => set({ ...q, offset: o })} />
        </>
      )}
    </div>
  );
}
