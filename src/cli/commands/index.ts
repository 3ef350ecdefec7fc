/**
 * The command registry. Each entry lazily imports its module so that `imakit <cmd>` loads only what
 * that command needs (style.md practice 9).
 */
import type { CommandModule } from '../command.ts';

export type CommandLoader = () => Promise<CommandModule>;

export const COMMANDS: readonly CommandLoader[] = [
  // keep one line per module; add new commands at the end
  () => import('./label.ts').then((m) => m.command),
  () => import('./keys.ts').then((m) => m.command),
  () => import('./vm.ts').then((m) => m.command),
  () => import('./log.ts').then((m) => m.command),
  () => import('./eventlog.ts').then((m) => m.command),
  () => import('./boot-aggregate.ts').then((m) => m.command),
  () => import('./hash.ts').then((m) => m.command),
  () => import('./sign.ts').then((m) => m.command),
  () => import('./verify.ts').then((m) => m.command),
  () => import('./evm.ts').then((m) => m.command),
  () => import('./policy.ts').then((m) => m.command),
  () => import('./preflight.ts').then((m) => m.command),
  () => import('./emulate.ts').then((m) => m.command),
];
