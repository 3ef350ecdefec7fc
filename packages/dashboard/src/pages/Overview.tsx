/** The fleet at a glance: counts by state, verdicts over time, failures by cause, the live feed. */
import { useState } from 'preact/hooks';
import { useApi, useSession, ErrorBox, Section } from '../components/common.tsx';
import { AttestChart } from '../components/Chart.tsx';
import { FailureGroups } from './Failures.tsx';
import { EventFeed } from './Events.tsx';
import { href } from '../router.ts';
import { num } from '../format.ts';
import type { EventView, Overview as OverviewT } from '../types.ts';

const CARDS = [
  ['passing', 'Passing', 'last attestation passed, within its interval'],
  ['failing', 'Failing', 'last attestation failed'],
  ['stale', 'Stale', 'passing, but no attestation within two intervals'],
  ['unenrolled', 'Unenrolled', 'no attestation key yet'],
  ['paused', 'Paused', 'not attested: paused by an operator'],
] as const;

const WINDOWS = [1, 6, 24, 168];

export function Overview({ live }: { live: EventView[] }) {
  const { tick } = useSession();
  const [hours, setHours] = useState(6);
  const o = useApi<OverviewT>(`/v1/dashboard/overview?hours=${hours}`, tick);
  const d = o.data;
  const seen = new Set(live.map((e) => e.id));
  const feed = [...live, ...(d?.events ?? []).filter((e) => !seen.has(e.id))].slice(0, 30);
  return (
    <div class="page">
      <h1>Fleet overview</h1>
      <ErrorBox error={o.error} />
      {d !== undefined && (
        <>
          <div class="counts" aria-label="agents by state">
            {CARDS.map(([key, label, title]) => (
              <a
                class={`count s-${key}`}
                href={href(['agents'], { state: key })}
                title={title}
                data-state={key}
              >
                <span class="n">{num(d.counts[key])}</span>
                <span class="l">{label}</span>
              </a>
            ))}
            <a class="count" href={href(['agents'])} data-state="total">
              <span class="n">{num(d.counts.total)}</span>
              <span class="l">All agents</span>
            </a>
          </div>
          <div class="grid2">
            <Section title="Attestations over time" id="chart">
              <div class="toolbar">
                <label>
                  window{' '}
                  <select
                    value={hours}
                    onChange={(e) => setHours(Number((e.target as HTMLSelectElement).value))}
                  >
                    {WINDOWS.map((h) => (
                      <option value={h}>{h < 24 ? `${h} h` : `${h / 24} d`}</option>
                    ))}
                  </select>
                </label>
              </div>
              <AttestChart series={d.series} />
            </Section>
            <Section title="Failures by cause" id="causes">
              <FailureGroups groups={d.failures} />
              <p>
                <a href={href(['failures'])}>All failure causes →</a>
              </p>
            </Section>
          </div>
          <Section title="Live feed" id="feed">
            <EventFeed events={feed} compact />
          </Section>
        </>
      )}
    </div>
  );
}
