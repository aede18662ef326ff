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

/** An integer >= 1 (batch sizes, counts), refused at parse time naming the option. */
export function positiveIntOption(name: string) {
  return (v: string) => {
    const n = Number(v);
    if (v.trim() === '' || !Number.isInteger(n) || n < 1) throw new InvalidArgumentError(`${name} must be a positive integer, got '${v}'`);
    return n;
  };
}

/** A finite number in [min, max], refused at parse time naming the option. */
export function boundedFloatOption(name: string, min: number, max: number) {
  return (v: string) => {
    const n = Number(v);
    if (v.trim() === '' || !Number.isFinite(n) || n < min || n > max) throw new InvalidArgumentError(`${name} must be a number from ${min} to ${max}, got '${v}'`);
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

/** Comma-separated numbers each passing `accepts`; `what` names them in the error. */
function numberList(name: string, accepts: (n: number) => boolean, what: string) {
  return (v: string) => {
    const parts = v.split(',').map((s) => s.trim());
    const list = parts.map(Number);
    // An empty item ('0.1,,0.2') is refused, not read as 0.
    if (parts.some((s) => s === '') || !list.every(accepts)) throw new InvalidArgumentError(`${name} expects comma-separated ${what}, got '${v}'`);
    return list;
  };
}

export function floatList(name: string) {
  return numberList(name, Number.isFinite, 'numbers');
}

/** Comma-separated fractions in [0, 1]. */
export function fractionList(name: string) {
  const parse = floatList(name);
  return (v: string) => {
    const list = parse(v);
    if (list.some((n) => n < 0 || n > 1)) throw new InvalidArgumentError(`${name} expects comma-separated fractions from 0 to 1, got '${v}'`);
    return list;
  };
}

export function intList(name: string) {
  return numberList(name, Number.isInteger, 'integers');
}

/** `--override tap=ratio:0.2` (threshold:, ratio:, count:), collected into {tap: budget}. */
export function collectOverride(v: string, acc: Record<string, Record<string, number>>): Record<string, Record<string, number>> {
  const eq = v.lastIndexOf('=');
  const [key, num] = eq > 0 ? v.slice(eq + 1).split(':') : [];
  const n = Number(num);
  if (eq <= 0 || !['threshold', 'ratio', 'count'].includes(key) || num === undefined || !Number.isFinite(n)) {
    throw new InvalidArgumentError(`--override expects <tap>=threshold:<t>, <tap>=ratio:<r> or <tap>=count:<n>, got '${v}'`);
  }
  return { ...acc, [v.slice(0, eq)]: { [key]: n } };
}

/** Options every command sees (declared on the program). */
export interface GlobalOptions {
  dataRoot?: string;
  json?: boolean;
}

/** `a,b,c`: three numbers. */
export function triple(name: string) {
  return (v: string): number[] => {
    const xs = v.split(',').map((s) => Number(s.trim()));
    if (xs.length !== 3 || xs.some((x) => !Number.isFinite(x))) throw new InvalidArgumentError(`${name} takes three numbers, R,G,B, got '${v}'`);
    return xs;
  };
}

/** `1,3,224,224` or `1x3x224x224`: four positive integers. */
export function shapeOption(v: string): number[] {
  const xs = v.split(/[,x]/).map((s) => Number(s.trim()));
  if (xs.length !== 4 || xs.some((x) => !Number.isInteger(x) || x < 1)) throw new InvalidArgumentError(`--input-shape takes four positive integers N,C,H,W (or N,H,W,C with --layout nhwc), got '${v}'`);
  return xs;
}

export function choice<T extends string>(name: string, values: readonly T[]) {
  return (v: string): T => {
    if (!values.includes(v as T)) throw new InvalidArgumentError(`${name} is one of ${values.join(', ')}, got '${v}'`);
    return v as T;
  };
}

/** The preprocessing options as commander declares them (prune and eval). */
export const PREPROCESS_OPTION_HELP = {
  size: 'input side in pixels (default: the model input\'s, else the model\'s recipe, else 224)',
  resize: "crop (shorter side to size*256/224, then centre crop; torchvision) or squash (straight to size x size)",
  mean: 'per-channel mean, R,G,B on the 0..1 scale (default: the model\'s recipe, else ImageNet\'s)',
  std: 'per-channel standard deviation, R,G,B on the 0..1 scale',
  interpolation: 'resize kernel: nearest, bilinear, bicubic or lanczos3 (default bilinear)',
  layout: 'the model\'s image input layout: nchw (PyTorch) or nhwc (TensorFlow/Keras)',
  inputShape: 'input shape N,C,H,W (N,H,W,C with --layout nhwc) for a model with dynamic dims; also sets --size',
};
