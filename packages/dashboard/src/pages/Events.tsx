/** State changes with their reasons; an operator acknowledges one (POST /v1/events/:id/ack). */
import { useState } from 'preact/hooks';
import type { ApiError } from '../api.ts';
import { api } from '../api.ts';
import { ActionButton, ErrorBox, useApi, useSession, onRowKeys } from '../components/common.tsx';
import { href } from '../router.ts';
import { ago, when } from '../format.ts';
import type { EventView } from '../types.ts';

function reasonText(r: unknown): string {
  if (typeof r !== 'object' || r === null) return '';
  const x = r as { why?: unknown; failure?: { path?: unknown; entry?: unknown } };
  let s = typeof x.why === 'string' ? x.why : '';
  if (typeof x.failure?.path === 'string') s += ` · ${x.failure.path}`;
  if (typeof x.failure?.entry === 'number') s += ` (entry ${x.failure.entry})`;
  return s;
}

export function EventFeed({
  events,
  compact,
  onAck,
}: {
  events: EventView[];
  compact?: boolean;
  onAck?: (id: number) => void;
}) {
  if (events.length === 0) return <p class="muted">No events yet.</p>;
  return (
    <div class="table-wrap">
      <table class="events">
        <thead>
          <tr>
            <th scope="col">when</th>
            <th scope="col">agent</th>
            <th scope="col">change</th>
            <th scope="col">why</th>
            {compact !== true && <th scope="col">acknowledged</th>}
          </tr>
        </thead>
        <tbody onKeyDown={onRowKeys}>
          {events.map((e) => (
            <tr class={`row ev-${e.to}`} tabIndex={0} data-event={e.id}>
              <td title={when(e.at)}>{compact === true ? ago(e.at) : when(e.at)}</td>
              <td>
                <a href={href(['agents', e.agentId])}>{e.agentId}</a>
              </td>
              <td>
                {e.from} → <span class={`badge s-${e.to}`}>{e.to}</span>
              </td>
              <td class="why">{reasonText(e.reason)}</td>
              {compact !== true && (
                <td>
                  {e.acknowledged === true ? (
                    'yes'
                  ) : (
                    <ActionButton onClick={() => onAck?.(e.id)}>acknowledge</ActionButton>
                  )}
                </td>
              )}
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

export function Events() {
  const { tick } = useSession();
  const r = useApi<{ events: EventView[] }>('/v1/events?limit=200', tick);
  const [err, setErr] = useState<ApiError | undefined>(undefined);
  const ack = async (id: number) => {
    try {
      await api('POST', `/v1/events/${id}/ack`);
      setErr(undefined);
      r.reload();
    } catch (e) {
      setErr(e as ApiError);
    }
  };
  return (
    <div class="page">
      <h1>Events</h1>
      <ErrorBox error={r.error} />
      <ErrorBox error={err} what="Acknowledging failed" />
      {r.data !== undefined && <EventFeed events={r.data.events} onAck={(id) => void ack(id)} />}
    </div>
  );
}
