/**
 * The dashboard's shell: the token (login), the token's role (a read-only token gets a read-only
 * page), the live stream of state changes (one server-sent-events connection; pages reload at
 * most every two seconds when the fleet changed), the navigation and the page for the URL.
 */
import { render } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import type { ApiError } from './api.ts';
import { api, getToken, setToken } from './api.ts';
import { ErrorBox, SessionContext, type Session } from './components/common.tsx';
import { href, useRoute } from './router.ts';
import { openStream } from './stream.ts';
import { zone } from './format.ts';
import type { EventView } from './types.ts';
import { Overview } from './pages/Overview.tsx';
import { Agents } from './pages/Agents.tsx';
import { AgentPage } from './pages/AgentPage.tsx';
import { Failures } from './pages/Failures.tsx';
import { Events } from './pages/Events.tsx';
import { RefDiffPage, RefSetPage, RefSets } from './pages/RefSets.tsx';
import './style.css';

function Login({ error, onToken }: { error: ApiError | undefined; onToken: (t: string) => void }) {
  const [text, setText] = useState('');
  return (
    <div class="page login">
      <h1>imakit fleet</h1>
      <p>
        Paste a verifier token. <code>imakit verifier serve</code> wrote an admin token to{' '}
        <code>DATA/admin-token</code> on its first start; a <code>read</code> token sees everything and
        changes nothing.
      </p>
      <ErrorBox error={error} what="The token was refused" />
      <form
        onSubmit={(e) => {
          e.preventDefault();
          onToken(text.trim());
        }}
      >
        <label>
          token{' '}
          <input
            type="password"
            name="token"
            autoComplete="off"
            value={text}
            onInput={(e) => setText((e.target as HTMLInputElement).value)}
          />
        </label>{' '}
        <button type="submit">sign in</button>
      </form>
    </div>
  );
}

const NAV = [
  ['', 'Overview'],
  ['agents', 'Agents'],
  ['failures', 'Failures'],
  ['refs', 'Reference sets'],
  ['events', 'Events'],
] as const;

function App() {
  const route = useRoute();
  const [role, setRole] = useState<string | undefined>(undefined);
  const [authError, setAuthError] = useState<ApiError | undefined>(undefined);
  const [tick, setTick] = useState(0);
  const [live, setLive] = useState<EventView[]>([]);
  const [online, setOnline] = useState(false);
  const [checking, setChecking] = useState(getToken() !== null);
  const pending = useRef<ReturnType<typeof setTimeout> | undefined>(undefined);

  const check = () => {
    if (getToken() === null) {
      setChecking(false);
      return;
    }
    setChecking(true);
    api<{ role: string }>('GET', '/v1/whoami').then(
      (r) => {
        setRole(r.role);
        setAuthError(undefined);
        setChecking(false);
      },
      (e: ApiError) => {
        setRole(undefined);
        setAuthError(e);
        setChecking(false);
      },
    );
  };
  useEffect(check, []);

  useEffect(() => {
    if (role === undefined) return;
    const s = openStream((e) => {
      setLive((l) => [e, ...l].slice(0, 50));
      // many changes at once reload each page once, not once per change
      pending.current ??= setTimeout(() => {
        pending.current = undefined;
        setTick((t) => t + 1);
      }, 2000);
    }, setOnline);
    return () => s.close();
  }, [role]);

  if (checking) return <p class="page muted">Checking the token…</p>;
  if (role === undefined)
    return (
      <Login
        error={authError}
        onToken={(t) => {
          setToken(t);
          check();
        }}
      />
    );

  const session: Session = { role, readOnly: role === 'read', tick };
  const [first = '', second, third, fourth] = route.parts;
  let page;
  if (first === '') page = <Overview live={live} />;
  else if (first === 'agents' && second !== undefined) page = <AgentPage id={second} route={route} />;
  else if (first === 'agents') page = <Agents route={route} />;
  else if (first === 'failures') page = <Failures />;
  else if (first === 'events') page = <Events />;
  else if (first === 'refs' && second !== undefined && third === 'diff' && fourth !== undefined)
    page = <RefDiffPage a={second} b={fourth} />;
  else if (first === 'refs' && second !== undefined)
    page = <RefSetPage key={`${second} ${route.query.get('q') ?? ''}`} id={second} route={route} />;
  else if (first === 'refs') page = <RefSets />;
  else
    page = (
      <div class="page">
        <h1>Not found</h1>
        <p>
          No page <code>{location.hash}</code>. <a href="#/">Overview</a>
        </p>
      </div>
    );

  return (
    <SessionContext.Provider value={session}>
      <header class="top">
        <a class="brand" href="#/">
          imakit fleet
        </a>
        <nav aria-label="main">
          {NAV.map(([p, label]) => (
            <a href={href(p === '' ? [] : [p])} aria-current={first === p ? 'page' : undefined}>
              {label}
            </a>
          ))}
        </nav>
        <span class="who">
          <span
            class={`live ${online ? 'on' : 'off'}`}
            title={online ? 'live: state changes arrive as they happen' : 'live feed disconnected: retrying'}
          >
            {online ? '● live' : '○ offline'}
          </span>{' '}
          <span class="role" title={`times in ${zone()}`}>
            {role}
          </span>{' '}
          <button
            type="button"
            class="link"
            onClick={() => {
              setToken(null);
              setRole(undefined);
            }}
          >
            sign out
          </button>
        </span>
      </header>
      {session.readOnly && (
        <div class="readonly" role="status">
          Read-only: this token has the <code>read</code> role. You can see everything; actions (pause,
          resume, delete, assign, acknowledge) need an <code>operate</code> token.
        </div>
      )}
      <main>{page}</main>
    </SessionContext.Provider>
  );
}

render(<App />, document.getElementById('app')!);
