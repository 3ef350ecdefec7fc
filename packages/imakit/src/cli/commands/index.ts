/**
 * The command registry. Each entry names its top-level command and lazily imports its module, so
 * `imakit <cmd>` loads only that command's code (style.md practice 9); `--help` loads them all.
 */
import type { CommandModule } from '../command.ts';

export interface CommandEntry {
  /** the top-level command word (`label`, `keys`, ...) */
  readonly name: string;
  readonly load: () => Promise<CommandModule>;
}

export const COMMANDS: readonly CommandEntry[] = [
  // keep one line per module; add new commands at the end
  { name: 'demo', load: () => import('./demo.ts').then((m) => m.command) },
  { name: 'label', load: () => import('./label.ts').then((m) => m.command) },
  { name: 'hash', load: () => import('./hash.ts').then((m) => m.command) },
  { name: 'sign', load: () => import('./sign.ts').then((m) => m.command) },
  { name: 'verify', load: () => import('./verify.ts').then((m) => m.command) },
  { name: 'evm', load: () => import('./evm.ts').then((m) => m.command) },
  { name: 'keys', load: () => import('./keys.ts').then((m) => m.command) },
  { name: 'log', load: () => import('./log.ts').then((m) => m.command) },
  { name: 'eventlog', load: () => import('./eventlog.ts').then((m) => m.command) },
  { name: 'boot-aggregate', load: () => import('./boot-aggregate.ts').then((m) => m.command) },
  { name: 'policy', load: () => import('./policy.ts').then((m) => m.command) },
  { name: 'preflight', load: () => import('./preflight.ts').then((m) => m.command) },
  { name: 'emulate', load: () => import('./emulate.ts').then((m) => m.command) },
  { name: 'vm', load: () => import('./vm.ts').then((m) => m.command) },
  { name: 'refs', load: () => import('./refs.ts').then((m) => m.command) },
  { name: 'doctor', load: () => import('./doctor.ts').then((m) => m.command) },
  { name: 'quote', load: () => import('./quote.ts').then((m) => m.command) },
  { name: 'tpm', load: () => import('./tpm.ts').then((m) => m.command) },
  { name: 'verifier', load: () => import('./verifier.ts').then((m) => m.command) },
  { name: 'fleet', load: () => import('./fleet.ts').then((m) => m.command) },
  { name: 'agent', load: () => import('./agent.ts').then((m) => m.command) },
];
