/**
 * Parsers for option values. This module is loaded for every command line, `--help` included,
 * so it imports only commander and types.
 */
import { InvalidArgumentError } from 'commander';
import type { ExecutionProvider } from '../runtime/session.js';
import type { RecoveryMethod } from '../recovery/index.js';

export function intOption(name: string) {
  return (v: string) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError(`${name} must be a non-negative integer, got '${v}'`);
    return n;
  };
}

export function floatOption(v: string): number {
  const n = Number(v);
  if (!Number.isFinite(n)) throw new InvalidArgumentError(`expected a number, got '${v}'`);
  return n;
}

export function providers(v: string): ExecutionProvider[] {
  const list = v.split(',').map((s) => s.trim().toLowerCase());
  for (const p of list) if (p !== 'cpu' && p !== 'cuda') throw new InvalidArgumentError(`unknown execution provider '${p}' (cpu, cuda)`);
  return list as ExecutionProvider[];
}

export function recoveryMethods(v: string): RecoveryMethod[] {
  const list = v.split(',').map((s) => s.trim());
  for (const m of list) if (m !== 'bias' && m !== 'lstsq' && m !== 'refit') throw new InvalidArgumentError(`unknown recovery method '${m}' (bias, lstsq, refit)`);
  return list as RecoveryMethod[];
}

/** Options every command sees (declared on the program). */
export interface GlobalOptions {
  dataRoot?: string;
  json?: boolean;
}
