/**
 * Option checks at the API boundary: every public entry point checks its options before any work
 * and throws one typed error naming the option and the value at fault. A wrong value is never
 * coerced (threshold '0.5' is refused, not parsed) nor silently replaced by a default.
 */

/** An option with a value the function cannot use. `option` is its path ('latency.batchSizes[0]'). */
export class OptionError extends Error {
  constructor(
    readonly option: string,
    readonly value: unknown,
    readonly reason: string,
  ) {
    super(`option ${option} = ${showValue(value)}: ${reason}`);
    this.name = new.target.name;
  }
}

const show = (v: unknown) => (typeof v === 'string' ? v : showValue(v));

/**
 * A resumed log (sweep, search) was written with another value of a setting that decides its
 * results. `setting` names it ('preprocessing', 'model', 'evaluation images'...).
 */
export class ResumeMismatchError extends Error {
  constructor(
    readonly setting: string,
    readonly logged: unknown,
    readonly current: unknown,
  ) {
    super(`resume: the log was written with another ${setting} (log: ${show(logged)}, this run: ${show(current)}); start a new log`);
    this.name = new.target.name;
  }
}

/**
 * Throws ResumeMismatchError unless `logged` and `current` are equal (as JSON). For two objects
 * the first differing field is named ('preprocessing mean'); `absent` describes a missing value.
 */
export function checkResumed(setting: string, logged: unknown, current: unknown, absent = 'none'): void {
  const json = (v: unknown) => JSON.stringify(v ?? null);
  if (json(logged) === json(current)) return;
  const isRecord = (v: unknown): v is Record<string, unknown> => !!v && typeof v === 'object' && !Array.isArray(v);
  if (isRecord(logged) && isRecord(current)) {
    for (const k of [...new Set([...Object.keys(logged), ...Object.keys(current)])]) {
      if (json(logged[k]) !== json(current[k])) throw new ResumeMismatchError(`${setting} ${k}`, logged[k] ?? absent, current[k] ?? absent);
    }
  }
  throw new ResumeMismatchError(setting, logged ?? absent, current ?? absent);
}

export function showValue(v: unknown): string {
  if (typeof v === 'string') return `'${v.length > 60 ? `${v.slice(0, 60)}...` : v}' (a string)`;
  if (typeof v === 'bigint') return `${v}n`;
  if (typeof v === 'function') return 'a function';
  if (v === undefined) return 'undefined';
  try {
    const s = JSON.stringify(v);
    return s === undefined ? String(v) : s.length > 80 ? `${s.slice(0, 80)}...` : s;
  } catch {
    return Object.prototype.toString.call(v);
  }
}

type Opts = Record<string, unknown> | undefined;

/** The options object itself: a plain object (undefined allowed when `required` is false). */
export function checkOptionsObject(name: string, v: unknown, required = false): Record<string, unknown> {
  if (v === undefined && !required) return {};
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new OptionError(name, v, required ? 'the options object is required' : 'must be an object');
  return v as Record<string, unknown>;
}

/** A required option that is missing. */
export function checkRequired(o: Opts, key: string, prefix = ''): void {
  if (!o || o[key] === undefined || o[key] === null) throw new OptionError(prefix + key, o?.[key], 'is required');
}

export function checkPositiveInt(o: Opts, key: string, prefix = '', max = Number.MAX_SAFE_INTEGER): void {
  const v = o?.[key];
  if (v === undefined) return;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > max) throw new OptionError(prefix + key, v, `must be an integer from 1 to ${max}`);
}

export function checkNonNegativeInt(o: Opts, key: string, prefix = ''): void {
  const v = o?.[key];
  if (v === undefined) return;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) throw new OptionError(prefix + key, v, 'must be an integer >= 0');
}

export function checkInteger(o: Opts, key: string, prefix = ''): void {
  const v = o?.[key];
  if (v === undefined) return;
  if (typeof v !== 'number' || !Number.isSafeInteger(v)) throw new OptionError(prefix + key, v, 'must be an integer');
}

export function checkNumber(o: Opts, key: string, prefix = '', range: { min?: number; max?: number } = {}): void {
  const v = o?.[key];
  if (v === undefined) return;
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new OptionError(prefix + key, v, 'must be a finite number');
  if (range.min !== undefined && v < range.min) throw new OptionError(prefix + key, v, `must be >= ${range.min}`);
  if (range.max !== undefined && v > range.max) throw new OptionError(prefix + key, v, `must be <= ${range.max}`);
}

export function checkBoolean(o: Opts, key: string, prefix = ''): void {
  const v = o?.[key];
  if (v !== undefined && typeof v !== 'boolean') throw new OptionError(prefix + key, v, 'must be true or false');
}

export function checkString(o: Opts, key: string, prefix = ''): void {
  const v = o?.[key];
  if (v !== undefined && typeof v !== 'string') throw new OptionError(prefix + key, v, 'must be a string');
}

export function checkFunction(o: Opts, key: string, prefix = ''): void {
  const v = o?.[key];
  if (v !== undefined && typeof v !== 'function') throw new OptionError(prefix + key, v, 'must be a function');
}

export function checkOneOf(o: Opts, key: string, allowed: readonly string[], prefix = ''): void {
  const v = o?.[key];
  if (v === undefined) return;
  if (typeof v !== 'string' || !allowed.includes(v)) throw new OptionError(prefix + key, v, `must be one of ${allowed.map((a) => `'${a}'`).join(', ')}`);
}

/** An array whose every element is one of `allowed`. */
export function checkListOf(o: Opts, key: string, allowed: readonly string[], prefix = ''): void {
  const v = o?.[key];
  if (v === undefined) return;
  if (!Array.isArray(v)) throw new OptionError(prefix + key, v, `must be an array of ${allowed.map((a) => `'${a}'`).join(', ')}`);
  v.forEach((x, i) => {
    if (typeof x !== 'string' || !allowed.includes(x)) throw new OptionError(`${prefix}${key}[${i}]`, x, `must be one of ${allowed.map((a) => `'${a}'`).join(', ')}`);
  });
}

/** A non-empty array of positive integers. */
export function checkPositiveIntList(o: Opts, key: string, prefix = ''): void {
  const v = o?.[key];
  if (v === undefined) return;
  if (!Array.isArray(v) || v.length === 0) throw new OptionError(prefix + key, v, 'must be a non-empty array of positive integers');
  v.forEach((x, i) => {
    if (typeof x !== 'number' || !Number.isInteger(x) || x < 1) throw new OptionError(`${prefix}${key}[${i}]`, x, 'must be a positive integer');
  });
}

/** Execution providers: a non-empty list of 'cpu' / 'cuda'. */
export function checkProviders(o: Opts, key = 'executionProviders', prefix = ''): void {
  const v = o?.[key];
  if (v === undefined) return;
  if (!Array.isArray(v) || v.length === 0) throw new OptionError(prefix + key, v, "must be a non-empty array of 'cpu', 'cuda'");
  checkListOf(o, key, ['cpu', 'cuda'], prefix);
}

/** Bootstrap settings: false, or { resamples >= 1, seed integer, level in (0, 1) }. */
export function checkBootstrap(o: Opts, key = 'bootstrap', prefix = ''): void {
  const v = o?.[key];
  if (v === undefined || v === false) return;
  const b = checkOptionsObject(prefix + key, v);
  checkPositiveInt(b, 'resamples', `${prefix}${key}.`);
  checkInteger(b, 'seed', `${prefix}${key}.`);
  const level = b.level;
  if (level !== undefined && !(typeof level === 'number' && level > 0 && level < 1)) throw new OptionError(`${prefix}${key}.level`, level, 'must be a number between 0 and 1');
}
