/**
 * Hash routing: every page has a URL (`#/agents/host-1`, `#/agents?state=failing&page=2`), so any
 * agent, failure group or reference set can be linked to, bookmarked and opened in a new tab; the
 * verifier serves one index.html and needs no server-side routes for them.
 */
import { useEffect, useState } from 'preact/hooks';

export interface Route {
  /** path segments, decoded: `#/agents/a%2Fb` → ['agents', 'a/b'] */
  readonly parts: readonly string[];
  readonly query: URLSearchParams;
}

export function parseHash(hash: string): Route {
  const h = hash.replace(/^#/, '');
  const [path = '', query = ''] = h.split('?', 2);
  const parts = path
    .split('/')
    .filter((p) => p !== '')
    .map((p) => {
      try {
        return decodeURIComponent(p);
      } catch {
        return p;
      }
    });
  return { parts, query: new URLSearchParams(query) };
}

/** `#/` + the encoded segments + the defined, non-empty query values. */
export function href(
  parts: readonly string[],
  query: Record<string, string | number | undefined | null> = {},
): string {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(query))
    if (v !== undefined && v !== null && v !== '') p.set(k, String(v));
  const s = p.toString();
  return `#/${parts.map(encodeURIComponent).join('/')}${s === '' ? '' : `?${s}`}`;
}

export function navigate(to: string, replace = false): void {
  if (replace) history.replaceState(null, '', to);
  else location.hash = to.replace(/^#/, '');
  if (replace) window.dispatchEvent(new HashChangeEvent('hashchange'));
}

export function useRoute(): Route {
  const [route, setRoute] = useState(() => parseHash(location.hash));
  useEffect(() => {
    const on = () => setRoute(parseHash(location.hash));
    window.addEventListener('hashchange', on);
    return () => window.removeEventListener('hashchange', on);
  }, []);
  return route;
}
