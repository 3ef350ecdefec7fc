/**
 * Where a policy comes from for the tools that apply one (`imakit policy explain`, `imakit
 * preflight`): a built-in name (the boot policy, `ima_policy=NAME`) or a policy file written after
 * boot (a custom policy, parsed with the profile's rules: formats.md §5, pitfalls 25 and 28).
 */
import { ImakitError } from '../../errors.ts';
import { readBoundedFile } from '../fs/bounded-read.ts';
import {
  builtinPolicyText,
  parseBuiltinRules,
  parsePolicy,
  type Diagnostic,
  type ParsedPolicy,
  type PolicyRule,
} from '../../core/policy/index.ts';
import type { KernelProfile } from '../../kernel/profiles.ts';

/** A policy file, a policy text, or built-in names (`tcb|appraise_tcb`). Exactly one. */
export interface PolicySource {
  readonly policyFile?: string;
  readonly policyText?: string;
  readonly builtin?: string;
}

/** Rules ready for the emulator or the matcher. */
export interface LoadedRules {
  readonly rules: PolicyRule[];
  /** indexes of rules the kernel parses but never applies (LSM rules without the LSM, …) */
  readonly inactive: ReadonlySet<number>;
  readonly failSecurely: boolean;
  /** the built-in names, [] for a custom policy */
  readonly builtinNames: readonly string[];
}

/** Read a policy file (E_IO_READ with its path). */
export function readPolicyFile(path: string): string {
  const bytes = readBoundedFile(path, 'policy');
  // A binary file given as the policy would otherwise be reported as hundreds of unknown
  // "keywords" made of its bytes: a NUL never occurs in a text policy, so name it once.
  const nul = bytes.indexOf(0);
  if (nul >= 0) {
    const line = 1 + bytes.subarray(0, nul).filter((b) => b === 0x0a).length;
    throw new ImakitError(
      'E_POLICY_SYNTAX',
      `not a text policy: NUL byte at offset ${nul} (a binary file?)`,
      {
        path,
        line,
        offset: nul,
      },
    );
  }
  const text = new TextDecoder('utf-8').decode(bytes);
  return text;
}

/** Parse a policy text as a custom policy written after boot on `profile`. */
export function parseCustomPolicy(text: string, profile: KernelProfile): ParsedPolicy {
  // a policy written after boot: the custom-policy rules for LSM labels apply
  return parsePolicy(text, { features: profile.policy, defaultPolicyActive: false });
}

/**
 * Load rules from built-in names or a policy file/text; an invalid policy raises the first error
 * diagnostic's code (E_POLICY_*) with its line, column and token, as the kernel refuses the write.
 * @throws ImakitError E_USAGE (no or several sources), E_IO_READ, E_POLICY_*
 */
export function loadPolicyRules(src: PolicySource, profile: KernelProfile): LoadedRules {
  const given = [src.policyFile, src.policyText, src.builtin].filter((x) => x !== undefined).length;
  if (given !== 1)
    throw new ImakitError('E_USAGE', 'give exactly one of a policy file, a policy text or a built-in name');
  if (src.builtin !== undefined) {
    const names = src.builtin.split(/[|,]/);
    const rules = names.flatMap((n) =>
      parseBuiltinRules(builtinPolicyText(n, profile.boot.builtin), n, profile.policy),
    );
    return { rules, inactive: new Set(), failSecurely: names.includes('fail_securely'), builtinNames: names };
  }
  const where = src.policyFile ?? '<policy>';
  const p = parseCustomPolicy(
    src.policyFile !== undefined ? readPolicyFile(src.policyFile) : src.policyText!,
    profile,
  );
  if (!p.ok) {
    const d = p.diagnostics.find((x) => x.severity === 'error') as Diagnostic;
    throw new ImakitError(d.code, `${where}: ${d.message} (the kernel would refuse the whole policy)`, {
      path: where,
      line: d.line,
      col: d.col,
      token: d.token,
    });
  }
  return { rules: [...p.rules], inactive: p.inactive, failSecurely: false, builtinNames: [] };
}
