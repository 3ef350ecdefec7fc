/**
 * The policy scanner (style.md practice 13): splits policy text into rules and tokens with their
 * line and column, the way ima_parse_add_rule()/ima_parse_rule() do (security/integrity/ima/ima_policy.c):
 * rules are separated by `\n`; leading blanks are skipped; a rule starting with `#` and an empty rule
 * are ignored; tokens are separated by spaces or tabs (strsep(" \t"), empty tokens skipped).
 */

/** One token of a rule: its text and where it starts. */
export interface Token {
  readonly text: string;
  /** 1-based line */
  readonly line: number;
  /** 1-based column of the first character */
  readonly col: number;
}

/** One non-empty, non-comment line of a policy. */
export interface RuleLine {
  readonly line: number;
  /** the line as written (without the newline) */
  readonly text: string;
  readonly tokens: readonly Token[];
}

/**
 * Split policy text into rule lines and tokens. A `\r` is NOT treated as whitespace (the kernel only
 * separates on space and tab, so a CRLF file leaves `\r` glued to the last token and the kernel
 * rejects it); the parser reports that token.
 */
export function tokenizePolicy(text: string): RuleLine[] {
  const out: RuleLine[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i] ?? '';
    let p = 0;
    while (p < raw.length && (raw[p] === ' ' || raw[p] === '\t')) p++;
    if (p >= raw.length || raw[p] === '#') continue;
    const tokens: Token[] = [];
    while (p < raw.length) {
      const c = raw[p];
      if (c === ' ' || c === '\t') {
        p++;
        continue;
      }
      const start = p;
      while (p < raw.length && raw[p] !== ' ' && raw[p] !== '\t') p++;
      tokens.push(Object.freeze({ text: raw.slice(start, p), line: i + 1, col: start + 1 }));
    }
    out.push(Object.freeze({ line: i + 1, text: raw, tokens: Object.freeze(tokens) }));
  }
  return out;
}
