/**
 * Current failures grouped by cause: the same step, code, path and digest on many hosts is one
 * cause ("one bad package"), shown first; a cause on one host is that host's own problem.
 */
import { useSession, useApi, ErrorBox } from '../components/common.tsx';
import { href } from '../router.ts';
import { ago, short, when } from '../format.ts';
import type { FailureGroup } from '../types.ts';

export function FailureGroups({ groups }: { groups: FailureGroup[] }) {
  if (groups.length === 0) return <p class="muted ok-text">No agent is failing.</p>;
  return (
    <ul class="causes">
      {groups.map((g) => (
        <li class={`cause scope-${g.scope}`}>
          <a
            class="cause-link"
            href={href(['agents'], { state: 'failing', code: g.code, path: g.path ?? undefined })}
          >
            <span class="hosts" title={`${g.hosts} failing agents share this cause`}>
              {g.hosts} {g.hosts === 1 ? 'host' : 'hosts'}
            </span>
            <span class="what">
              <code>{g.code ?? 'unknown'}</code> in {g.step ?? '?'}
              {g.path !== null && (
                <>
                  {' '}
                  · <span class="path">{g.path}</span>
                </>
              )}
              {g.actual !== null && (
                <span class="muted" title={g.actual}>
                  {' '}
                  · {short(g.actual)}
                </span>
              )}
            </span>
          </a>
          <span class="scope">
            {g.scope === 'fleet' ? 'same cause on several hosts' : 'one host'}
            {g.since !== null && <span title={when(g.since)}> · since {ago(g.since)}</span>}
          </span>
          <span class="sample">
            {g.agents.map((a) => (
              <a href={href(['agents', a.id], { tab: 'failure' })}>{a.name}</a>
            ))}
            {g.hosts > g.agents.length && <span class="muted"> and {g.hosts - g.agents.length} more</span>}
          </span>
        </li>
      ))}
    </ul>
  );
}

export function Failures() {
  const { tick } = useSession();
  const r = useApi<{ groups: FailureGroup[] }>('/v1/dashboard/failures?limit=500', tick);
  return (
    <div class="page">
      <h1>Failures by cause</h1>
      <ErrorBox error={r.error} />
      {r.data !== undefined && <FailureGroups groups={r.data.groups} />}
    </div>
  );
}
