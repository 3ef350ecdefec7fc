/**
 * Reference sets: the list; one set with its provenance (packages and versions, images, rootfs)
 * and a path search; the diff between two; and the impact preview — before a set is assigned to a
 * group of agents, which would fail and on which entries, from the lists they already sent — with
 * the assignment itself beside it.
 */
import { useState } from 'preact/hooks';
import type { ApiError } from '../api.ts';
import { api, qs } from '../api.ts';
import {
  ActionButton,
  ErrorBox,
  ReferenceDigests,
  Section,
  StateBadge,
  onRowKeys,
  useApi,
  useSession,
} from '../components/common.tsx';
import { href, navigate, type Route } from '../router.ts';
import { bytes, num, provenanceText, short, when } from '../format.ts';
import type { Impact, RefDiff, RefSetDetail, RefSetListItem } from '../types.ts';

export function RefSets() {
  const { tick } = useSession();
  const r = useApi<{ referenceSets: RefSetListItem[] }>('/v1/reference-sets', tick);
  return (
    <div class="page">
      <h1>Reference sets</h1>
      <ErrorBox error={r.error} />
      {r.data !== undefined &&
        (r.data.referenceSets.length === 0 ? (
          <p class="muted">
            No reference set uploaded yet (<code>imakit fleet refs upload FILE</code>).
          </p>
        ) : (
          <div class="table-wrap">
            <table>
              <thead>
                <tr>
                  <th scope="col">name</th>
                  <th scope="col">id (SHA-256 of its bytes)</th>
                  <th scope="col">size</th>
                  <th scope="col">agents</th>
                  <th scope="col">uploaded</th>
                </tr>
              </thead>
              <tbody onKeyDown={onRowKeys}>
                {r.data.referenceSets.map((s) => (
                  <tr class="row" tabIndex={0} data-refs={s.id}>
                    <td>
                      <a href={href(['refs', s.id])}>{s.name}</a>
                    </td>
                    <td class="digest" title={s.id}>
                      {short(s.id, 16)}
                    </td>
                    <td>{bytes(s.bytes)}</td>
                    <td>
                      <a href={href(['agents'], { refs: s.id })}>{num(s.agents)}</a>
                    </td>
                    <td>{when(s.createdAt)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        ))}
    </div>
  );
}

function ImpactPreview({ set, route }: { set: RefSetDetail; route: Route }) {
  const sets = useApi<{ referenceSets: RefSetListItem[] }>('/v1/reference-sets');
  const [from, setFrom] = useState(route.query.get('from') ?? '');
  const [ids, setIds] = useState(route.query.get('impact') ?? '');
  const [res, setRes] = useState<Impact | undefined>(undefined);
  const [err, setErr] = useState<ApiError | undefined>(undefined);
  const [busy, setBusy] = useState(false);
  const [assigned, setAssigned] = useState<string | undefined>(undefined);
  const agents = ids
    .split(/[\s,]+/)
    .map((s) => s.trim())
    .filter((s) => s !== '');
  const preview = async () => {
    setBusy(true);
    setAssigned(undefined);
    try {
      setRes(
        await api<Impact>('POST', '/v1/dashboard/impact', {
          referenceSet: set.id,
          ...(agents.length > 0 && { agents }),
          ...(from !== '' && { from }),
        }),
      );
      setErr(undefined);
    } catch (e) {
      setErr(e as ApiError);
      setRes(undefined);
    } finally {
      setBusy(false);
    }
  };
  const assign = async () => {
    if (res === undefined) return;
    setBusy(true);
    try {
      for (const r of res.results)
        await api('PATCH', `/v1/agents/${encodeURIComponent(r.agentId)}`, { referenceSet: set.id });
      setAssigned(
        `${res.results.length} agents now hold ${set.name}; their next attestation is judged by it.`,
      );
      setErr(undefined);
    } catch (e) {
      setErr(e as ApiError);
    } finally {
      setBusy(false);
    }
  };
  return (
    <>
      <form
        class="filters"
        onSubmit={(e) => {
          e.preventDefault();
          void preview();
        }}
      >
        <label>
          agents now on{' '}
          <select value={from} onChange={(e) => setFrom((e.target as HTMLSelectElement).value)}>
            <option value="">any set</option>
            <option value="none">no set</option>
            {sets.data?.referenceSets.map((s) => (
              <option value={s.id}>{s.name}</option>
            ))}
          </select>
        </label>
        <label>
          or these agent ids{' '}
          <input
            type="text"
            value={ids}
            placeholder="host-1, host-2"
            onInput={(e) => setIds((e.target as HTMLInputElement).value)}
          />
        </label>
        <button type="submit" disabled={busy}>
          preview impact
        </button>
      </form>
      <ErrorBox error={err} />
      {res !== undefined && (
        <div class="impact" data-would-fail={res.wouldFail} data-would-pass={res.wouldPass}>
          <p class={res.wouldFail > 0 ? 'fail-text' : 'ok-text'}>
            <strong>
              {res.wouldPass} would pass, {res.wouldFail} would fail
            </strong>
            {res.noList > 0 && `, ${res.noList} have no stored list to judge`}
            {res.matched > res.evaluated && ` (first ${res.evaluated} of ${res.matched} agents)`}.
          </p>
          <div class="table-wrap">
            <table>
              <thead>
                <tr>
                  <th scope="col">agent</th>
                  <th scope="col">now</th>
                  <th scope="col">with this set</th>
                  <th scope="col">refused entries</th>
                </tr>
              </thead>
              <tbody onKeyDown={onRowKeys}>
                {res.results.map((r) => (
                  <tr class="row" tabIndex={0} data-agent={r.agentId}>
                    <td>
                      <a href={href(['agents', r.agentId])}>{r.name}</a>
                    </td>
                    <td>
                      <StateBadge state={r.state} />
                    </td>
                    <td>
                      <span class={`badge v-${r.outcome}`}>
                        {r.outcome === 'no-list' ? 'no stored list' : `would ${r.outcome}`}
                      </span>{' '}
                      <span class="muted small">{num(r.entries)} entries</span>
                    </td>
                    <td class="why">
                      {r.unusable !== null && (
                        <div>
                          {r.unusable.message} <code>{r.unusable.code}</code>
                        </div>
                      )}
                      {r.first.map((f) => (
                        <div>
                          <a href={href(['agents', r.agentId], { tab: 'ima', entry: f.entry, q: f.path })}>
                            #{f.entry}
                          </a>{' '}
                          <span class="path">{f.path}</span> <code>{f.reason}</code>
                        </div>
                      ))}
                      {r.refused > r.first.length && (
                        <div class="muted">and {r.refused - r.first.length} more</div>
                      )}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
          <ul class="muted small">
            {res.notEstablished.map((s) => (
              <li>Not established: {s}</li>
            ))}
          </ul>
          {res.results.length > 0 && (
            <ActionButton busy={busy} onClick={assign}>
              assign {set.name} to these {res.results.length} agents
            </ActionButton>
          )}
          {assigned !== undefined && (
            <p class="ok-text" role="status">
              {assigned}
            </p>
          )}
        </div>
      )}
    </>
  );
}

export function RefSetPage({ id, route }: { id: string; route: Route }) {
  const q = route.query.get('q') ?? '';
  const [text, setText] = useState(q);
  const r = useApi<RefSetDetail>(`/v1/dashboard/reference-sets/${encodeURIComponent(id)}${qs({ q })}`);
  const sets = useApi<{ referenceSets: RefSetListItem[] }>('/v1/reference-sets');
  const d = r.data;
  return (
    <div class="page">
      <p class="crumbs">
        <a href={href(['refs'])}>Reference sets</a> /
      </p>
      <h1>{d?.name ?? short(id)}</h1>
      <ErrorBox error={r.error} />
      {d !== undefined && (
        <>
          <dl class="facts inline">
            <dt>id</dt>
            <dd class="digest">{d.id}</dd>
            <dt>uploaded</dt>
            <dd>{when(d.createdAt)}</dd>
            <dt>paths</dt>
            <dd>{num(d.paths)}</dd>
            <dt>signing keys</dt>
            <dd>{num(d.keys)}</dd>
            <dt>file hash</dt>
            <dd>{d.hashAlgo ?? 'any'}</dd>
            <dt>agents</dt>
            <dd>
              <a href={href(['agents'], { refs: d.id })}>{num(d.agents)}</a>
            </dd>
            {Object.entries(d.meta).map(([k, v]) => (
              <>
                <dt>{k}</dt>
                <dd>{String(v)}</dd>
              </>
            ))}
          </dl>
          <p class="muted small">
            Not established: that the set is genuine — the verifier does not check a signature on it.
          </p>
          <Section title="Impact preview" id="impact">
            <ImpactPreview set={d} route={route} />
          </Section>
          <Section title={`Provenance (${num(d.provenanceCount)} sources)`} id="provenance">
            <div class="table-wrap">
              <table>
                <thead>
                  <tr>
                    <th scope="col">source</th>
                    <th scope="col">paths</th>
                  </tr>
                </thead>
                <tbody onKeyDown={onRowKeys}>
                  {d.provenances.map((p) => (
                    <tr class="row" tabIndex={0}>
                      <td>{provenanceText(p.provenance)}</td>
                      <td>{num(p.paths)}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          </Section>
          <Section title="Paths" id="paths">
            <form
              class="filters"
              role="search"
              onSubmit={(e) => {
                e.preventDefault();
                navigate(href(['refs', id], { q: text }), true);
              }}
            >
              <label>
                path contains{' '}
                <input
                  type="search"
                  value={text}
                  onInput={(e) => setText((e.target as HTMLInputElement).value)}
                />
              </label>
              <button type="submit">search</button>
            </form>
            {q !== '' && d.matches.length === 0 && <p class="muted">No path contains “{q}”.</p>}
            <ul class="matches">
              {d.matches.map((m) => (
                <li>
                  <span class="path">{m.path}</span>
                  <ReferenceDigests digests={m.digests} />
                </li>
              ))}
            </ul>
          </Section>
          <Section title="Compare with another set" id="diff">
            <ul>
              {sets.data?.referenceSets
                .filter((s) => s.id !== id)
                .map((s) => (
                  <li>
                    <a href={href(['refs', s.id, 'diff', id])}>
                      changes from {s.name} to {d.name}
                    </a>
                  </li>
                ))}
            </ul>
          </Section>
        </>
      )}
    </div>
  );
}

interface PackageDiff {
  package: string;
  before: string[];
  after: string[];
  added: string[];
  removed: string[];
  changed: { path: string; before: string[]; after: string[] }[];
}

export function RefDiffPage({ a, b }: { a: string; b: string }) {
  const r = useApi<RefDiff>(`/v1/reference-sets/${a}/diff/${b}`);
  const d = r.data;
  return (
    <div class="page">
      <p class="crumbs">
        <a href={href(['refs'])}>Reference sets</a> / <a href={href(['refs', a])}>{short(a)}</a> →{' '}
        <a href={href(['refs', b])}>{short(b)}</a>
      </p>
      <h1>Reference set diff</h1>
      <ErrorBox error={r.error} />
      {d !== undefined && (
        <>
          <p>
            <strong>{num(d.added)}</strong> paths added, <strong>{num(d.removed)}</strong> removed,{' '}
            <strong>{num(d.changed)}</strong> changed, {num(d.unchanged)} unchanged.
          </p>
          <div class="table-wrap">
            <table>
              <thead>
                <tr>
                  <th scope="col">source</th>
                  <th scope="col">versions before → after</th>
                  <th scope="col">added</th>
                  <th scope="col">removed</th>
                  <th scope="col">changed</th>
                </tr>
              </thead>
              <tbody onKeyDown={onRowKeys}>
                {(d.packages as PackageDiff[]).map((p) => (
                  <tr class="row" tabIndex={0}>
                    <td>{p.package}</td>
                    <td>
                      {p.before.join(', ') || '—'} → {p.after.join(', ') || '—'}
                    </td>
                    <td class="path small">
                      {p.added.slice(0, 20).join('\n')}
                      {p.added.length > 20 ? `\n… ${p.added.length - 20} more` : ''}
                    </td>
                    <td class="path small">
                      {p.removed.slice(0, 20).join('\n')}
                      {p.removed.length > 20 ? `\n… ${p.removed.length - 20} more` : ''}
                    </td>
                    <td class="path small">
                      {p.changed
                        .slice(0, 20)
                        .map((c) => c.path)
                        .join('\n')}
                      {p.changed.length > 20 ? `\n… ${p.changed.length - 20} more` : ''}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
          {d.other.length > 0 && (
            <ul>
              {d.other.map((o) => (
                <li>{o}</li>
              ))}
            </ul>
          )}
        </>
      )}
    </div>
  );
}
