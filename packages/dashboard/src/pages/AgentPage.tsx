/**
 * One agent: its state and the current failure explained (step, entry, offset, path, expected and
 * actual, the reference entries with their provenance, what would make it pass), the verdict
 * timeline, what the last verdict does not establish, its PCRs per bank marked quoted or not, its
 * boot events, its IMA list with a verdict per entry; and the operator's actions on it.
 */
import { useState } from 'preact/hooks';
import { api, ApiError, qs } from '../api.ts';
import {
  ActionButton,
  ErrorBox,
  Pager,
  ReferenceDigests,
  Section,
  StateBadge,
  onRowKeys,
  useApi,
  useSession,
} from '../components/common.tsx';
import { href, navigate, type Route } from '../router.ts';
import { ago, bytes, num, provenanceText, short, when } from '../format.ts';
import type { AgentDetail, ImaPage, RefSetListItem } from '../types.ts';

const TABS = [
  ['failure', 'State'],
  ['timeline', 'Verdicts'],
  ['pcrs', 'PCRs'],
  ['boot', 'Boot events'],
  ['ima', 'IMA list'],
] as const;

function valueText(v: unknown): string {
  if (v === null || v === undefined) return 'none';
  if (Array.isArray(v)) return v.length === 0 ? 'none' : v.map(String).join(', ');
  return typeof v === 'string' ? v : JSON.stringify(v);
}

function Actions({ d, onDone }: { d: AgentDetail; onDone: () => void }) {
  const [err, setErr] = useState<ApiError | undefined>(undefined);
  const [busy, setBusy] = useState(false);
  const sets = useApi<{ referenceSets: RefSetListItem[] }>('/v1/reference-sets');
  const [pick, setPick] = useState('');
  const { readOnly } = useSession();
  const run = async (f: () => Promise<unknown>, after?: () => void) => {
    setBusy(true);
    try {
      await f();
      setErr(undefined);
      (after ?? onDone)();
    } catch (e) {
      setErr(e instanceof ApiError ? e : new ApiError(0, 'CLIENT', String(e)));
    } finally {
      setBusy(false);
    }
  };
  const id = encodeURIComponent(d.agent.id);
  const paused = d.agent.state === 'paused';
  return (
    <div class="actions">
      {paused ? (
        <ActionButton busy={busy} onClick={() => run(() => api('POST', `/v1/agents/${id}/resume`))}>
          resume
        </ActionButton>
      ) : (
        <ActionButton busy={busy} onClick={() => run(() => api('POST', `/v1/agents/${id}/pause`))}>
          pause
        </ActionButton>
      )}
      <span class="assign">
        <select
          disabled={readOnly}
          aria-label="reference set to assign"
          value={pick}
          onChange={(e) => setPick((e.target as HTMLSelectElement).value)}
        >
          <option value="">reference set…</option>
          {sets.data?.referenceSets.map((s) => (
            <option value={s.id} disabled={s.id === d.agent.referenceSet}>
              {s.name} ({short(s.id, 8)})
            </option>
          ))}
        </select>
        <ActionButton
          busy={busy}
          disabled={pick === ''}
          onClick={() => run(() => api('PATCH', `/v1/agents/${id}`, { referenceSet: pick }))}
        >
          assign
        </ActionButton>
        {pick !== '' && <a href={href(['refs', pick], { impact: d.agent.id })}>preview impact first</a>}
      </span>
      <ActionButton
        danger
        busy={busy}
        onClick={() =>
          confirm(`Delete agent ${d.agent.id}? Its history is deleted too.`)
            ? run(
                () => api('DELETE', `/v1/agents/${id}`),
                () => navigate(href(['agents'])),
              )
            : undefined
        }
      >
        delete
      </ActionButton>
      <ErrorBox error={err} what="The action failed" />
    </div>
  );
}

function FailureExplained({ d }: { d: AgentDetail }) {
  const f = d.failure;
  if (f === null)
    return (
      <p class={d.state === 'passing' ? 'ok-text' : 'muted'}>
        {d.state === 'passing'
          ? 'The last attestation passed.'
          : d.state === 'stale'
            ? `The last attestation passed, but it is older than two intervals (${d.agent.intervalSeconds} s each): the agent is not reporting.`
            : `No failure: the agent is ${d.state}.`}
      </p>
    );
  return (
    <div class="failure">
      <p class="fail-text">
        <strong>{f.message}</strong>
      </p>
      <dl class="facts">
        <dt>step</dt>
        <dd>{f.step}</dd>
        <dt>code</dt>
        <dd>
          <code>{f.code}</code>
          {f.cause !== undefined && <span class="muted"> ({f.cause})</span>}
        </dd>
        {f.entry !== undefined && (
          <>
            <dt>entry</dt>
            <dd>
              <a href={href(['agents', d.agent.id], { tab: 'ima', entry: f.entry, q: f.path })}>#{f.entry}</a>
              {f.offset !== undefined && <span class="muted"> at byte {num(f.offset)}</span>}
            </dd>
          </>
        )}
        {f.field !== undefined && (
          <>
            <dt>field</dt>
            <dd>
              <code>{f.field}</code>
            </dd>
          </>
        )}
        {f.path !== undefined && (
          <>
            <dt>path</dt>
            <dd class="path">{f.path}</dd>
          </>
        )}
        {'expected' in f && (
          <>
            <dt>expected</dt>
            <dd class="digest">{valueText(f.expected)}</dd>
          </>
        )}
        {'actual' in f && (
          <>
            <dt>actual</dt>
            <dd class="digest">{valueText(f.actual)}</dd>
          </>
        )}
        {f.fix !== undefined && (
          <>
            <dt>to pass</dt>
            <dd>{f.fix}</dd>
          </>
        )}
      </dl>
      {d.reference !== null && (
        <div class="reference">
          <h3>
            The reference set{' '}
            <a href={href(['refs', d.reference.referenceSet], { q: d.reference.path })}>
              {d.referenceSetName ?? short(d.reference.referenceSet)}
            </a>{' '}
            for this path
          </h3>
          {d.reference.digests.length === 0 ? (
            <p>The set has no entry for {d.reference.path}.</p>
          ) : (
            <ReferenceDigests digests={d.reference.digests} />
          )}
        </div>
      )}
    </div>
  );
}

function Timeline({ d }: { d: AgentDetail }) {
  const v = d.verdicts;
  if (v.length === 0) return <p class="muted">No verdict yet.</p>;
  return (
    <>
      <div class="strip" aria-hidden="true">
        {[...v].reverse().map((x) => (
          <span
            class={`tick ${x.status}`}
            title={`${when(x.at)}: ${x.status}${x.code !== null ? ` (${x.code})` : ''}`}
          />
        ))}
      </div>
      <div class="table-wrap">
        <table>
          <thead>
            <tr>
              <th scope="col">when</th>
              <th scope="col">verdict</th>
              <th scope="col">step</th>
              <th scope="col">code</th>
              <th scope="col">entry</th>
              <th scope="col">path</th>
            </tr>
          </thead>
          <tbody onKeyDown={onRowKeys}>
            {v.map((x) => (
              <tr class="row" tabIndex={0}>
                <td>{when(x.at)}</td>
                <td>
                  <span class={`badge v-${x.status}`}>{x.status}</span>
                </td>
                <td>{x.step ?? ''}</td>
                <td>{x.code !== null && <code>{x.code}</code>}</td>
                <td>{x.entry ?? ''}</td>
                <td class="path">{x.path ?? ''}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </>
  );
}

function Pcrs({ d }: { d: AgentDetail }) {
  const p = d.pcrs;
  if (p === null) return <p class="muted">No evidence received yet.</p>;
  return (
    <>
      <p>
        Values as sent {ago(p.at)} ({when(p.at)}).{' '}
        {p.quoted === null ? (
          <strong class="fail-text">The quote did not verify: none of these values is established.</strong>
        ) : (
          <>
            The verified quote covered <code>{p.quoted}</code>
            {p.banks.some((b) => b.pcrs.some((x) => !x.quoted)) ? (
              <>
                ; the values marked unquoted were sent but are <strong>not established</strong>.
              </>
            ) : (
              '.'
            )}
          </>
        )}
      </p>
      {p.banks.map((b) => (
        <div class="bank">
          <h3>{b.bank}</h3>
          <div class="table-wrap">
            <table class="pcrs">
              <thead>
                <tr>
                  <th scope="col">PCR</th>
                  <th scope="col">value</th>
                  <th scope="col">status</th>
                </tr>
              </thead>
              <tbody onKeyDown={onRowKeys}>
                {b.pcrs.map((x) => (
                  <tr
                    class={`row ${x.quoted ? 'pcr-quoted' : 'pcr-unquoted'}`}
                    tabIndex={0}
                    data-pcr={`${b.bank}:${x.index}`}
                  >
                    <td>{x.index}</td>
                    <td class={`digest ${x.quoted ? '' : 'unestablished'}`}>{x.value}</td>
                    <td>
                      {x.quoted ? (
                        <span class="badge quoted" title="covered by the verified quote">
                          quoted
                        </span>
                      ) : (
                        <span
                          class="badge unquoted"
                          title="sent by the agent, not covered by the quote: not established"
                        >
                          unquoted — not established
                        </span>
                      )}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        </div>
      ))}
    </>
  );
}

function Boot({ d }: { d: AgentDetail }) {
  const b = d.boot;
  if (b === null) return <p class="muted">The agent sent no TCG event log.</p>;
  return (
    <>
      <p class="muted">
        The event log as the agent sent it; the verdict's boot step says whether it replays to the quoted
        PCRs.
      </p>
      {b.error !== null && <p class="fail-text">The event log does not parse: {b.error}</p>}
      <div class="table-wrap">
        <table>
          <thead>
            <tr>
              <th scope="col">#</th>
              <th scope="col">PCR</th>
              <th scope="col">type</th>
              <th scope="col">digests</th>
              <th scope="col">data</th>
            </tr>
          </thead>
          <tbody onKeyDown={onRowKeys}>
            {b.events.map((e) => (
              <tr class="row" tabIndex={0}>
                <td>{e.index}</td>
                <td>{e.pcr}</td>
                <td>{e.type}</td>
                <td class="digest">
                  {Object.entries(e.digests).map(([bank, hex]) => (
                    <div title={hex}>
                      {bank}:{short(hex, 16)}
                    </div>
                  ))}
                </td>
                <td>{bytes(e.size)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </>
  );
}

function ImaList({ d, route }: { d: AgentDetail; route: Route }) {
  const { tick } = useSession();
  const q = Object.fromEntries(route.query);
  const offset = Number(q.offset ?? 0) || 0;
  const limit = 100;
  const [text, setText] = useState(q.q ?? '');
  const set = (patch: Record<string, string | number | undefined>) =>
    navigate(href(['agents', d.agent.id], { ...q, tab: 'ima', offset: undefined, ...patch }), true);
  const r = useApi<ImaPage>(
    `/v1/dashboard/agents/${encodeURIComponent(d.agent.id)}/ima${qs({ q: q.q, status: q.status, offset, limit })}`,
    tick,
  );
  const mark = q.entry === undefined ? undefined : Number(q.entry);
  return (
    <>
      <form
        class="filters"
        role="search"
        onSubmit={(e) => {
          e.preventDefault();
          set({ q: text });
        }}
      >
        <label>
          path contains{' '}
          <input type="search" value={text} onInput={(e) => setText((e.target as HTMLInputElement).value)} />
        </label>
        <label>
          verdict{' '}
          <select
            value={q.status ?? ''}
            onChange={(e) => set({ status: (e.target as HTMLSelectElement).value })}
          >
            <option value="">any</option>
            <option value="refused">refused</option>
            <option value="allowed">allowed</option>
          </select>
        </label>
        <button type="submit">search</button>
      </form>
      <ErrorBox error={r.error} />
      {r.data !== undefined && (
        <>
          <p class="muted">
            {num(r.data.listEntries)} entries stored (covered by verified quotes
            {r.data.firstEntry > 0 ? `, from entry ${r.data.firstEntry}` : ''}), evaluated against{' '}
            {r.data.referenceSet === null ? 'no reference set' : short(r.data.referenceSet)}.
          </p>
          {r.data.unusable !== null && (
            <p class="fail-text">
              The reference set cannot judge this list: {r.data.unusable.message}{' '}
              <code>{r.data.unusable.code}</code>
            </p>
          )}
          <div class="table-wrap">
            <table class="ima">
              <thead>
                <tr>
                  <th scope="col">#</th>
                  <th scope="col">path</th>
                  <th scope="col">digest</th>
                  <th scope="col">verdict</th>
                  <th scope="col">reference</th>
                </tr>
              </thead>
              <tbody onKeyDown={onRowKeys}>
                {r.data.entries.map((e) => (
                  <tr
                    class={`row ${e.status} ${e.index === mark ? 'marked' : ''}`}
                    tabIndex={0}
                    data-entry={e.index}
                  >
                    <td title={`byte ${e.offset}`}>{e.index}</td>
                    <td class="path">{e.path}</td>
                    <td class="digest" title={e.digest ?? ''}>
                      {e.algo !== null && e.digest !== null ? `${e.algo}:${short(e.digest, 16)}` : e.template}
                    </td>
                    <td>
                      <span class={`badge v-${e.status}`}>{e.status}</span>{' '}
                      <span class="muted small">{e.reason}</span>
                    </td>
                    <td class="small">{e.provenance !== null ? provenanceText(e.provenance) : ''}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
          <Pager offset={offset} limit={limit} total={r.data.total} go={(o) => set({ offset: o })} />
        </>
      )}
    </>
  );
}

export function AgentPage({ id, route }: { id: string; route: Route }) {
  const { tick } = useSession();
  const r = useApi<AgentDetail>(`/v1/dashboard/agents/${encodeURIComponent(id)}`, tick);
  const tab = route.query.get('tab') ?? 'failure';
  const d = r.data;
  return (
    <div class="page">
      <p class="crumbs">
        <a href={href(['agents'])}>Agents</a> /
      </p>
      <h1>
        {d?.agent.name ?? id} {d !== undefined && <StateBadge state={d.state} stale={d.agent.stale} />}
      </h1>
      <ErrorBox error={r.error} />
      {d !== undefined && (
        <>
          <dl class="facts inline">
            <dt>id</dt>
            <dd>{d.agent.id}</dd>
            <dt>reference set</dt>
            <dd>
              {d.agent.referenceSet === null ? (
                'none'
              ) : (
                <a href={href(['refs', d.agent.referenceSet])}>
                  {d.referenceSetName ?? short(d.agent.referenceSet)}
                </a>
              )}
            </dd>
            <dt>required PCRs</dt>
            <dd>
              <code>{d.agent.requirePcrs}</code>
            </dd>
            <dt>last attestation</dt>
            <dd title={when(d.agent.lastAttestedAt)}>{ago(d.agent.lastAttestedAt)}</dd>
            <dt>interval</dt>
            <dd>{d.agent.intervalSeconds} s</dd>
            <dt>enrolled</dt>
            <dd>{d.agent.enrolled ? 'yes' : 'no'}</dd>
          </dl>
          <Actions d={d} onDone={r.reload} />
          <nav class="tabs" aria-label="agent sections">
            {TABS.map(([key, label]) => (
              <a href={href(['agents', id], { tab: key })} aria-current={tab === key ? 'page' : undefined}>
                {label}
              </a>
            ))}
          </nav>
          {tab === 'failure' && (
            <>
              <Section title={d.failure !== null ? 'Why it fails' : 'State'} id="failure">
                <FailureExplained d={d} />
              </Section>
              {d.steps.length > 0 && (
                <Section title="Last verdict, step by step" id="steps">
                  <ul class="steps">
                    {d.steps.map((s) => (
                      <li>
                        <span class={`badge v-${s.status}`}>{s.status}</span> <strong>{s.step}</strong>:{' '}
                        {s.detail}
                      </li>
                    ))}
                  </ul>
                </Section>
              )}
              <Section title="What the last verdict does not establish" id="not-established">
                {d.notEstablished.length === 0 ? (
                  <p class="muted">Nothing listed.</p>
                ) : (
                  <ul>
                    {d.notEstablished.map((s) => (
                      <li>{s}</li>
                    ))}
                  </ul>
                )}
              </Section>
            </>
          )}
          {tab === 'timeline' && (
            <Section title="Verdicts, newest first" id="timeline">
              <Timeline d={d} />
            </Section>
          )}
          {tab === 'pcrs' && (
            <Section title="PCRs per bank" id="pcrs">
              <Pcrs d={d} />
            </Section>
          )}
          {tab === 'boot' && (
            <Section title="Measured-boot events" id="boot">
              <Boot d={d} />
            </Section>
          )}
          {tab === 'ima' && (
            <Section title="IMA measurement list" id="ima">
              <ImaList key={route.query.get('q') ?? ''} d={d} route={route} />
            </Section>
          )}
        </>
      )}
    </div>
  );
}
