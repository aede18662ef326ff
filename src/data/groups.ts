/**
 * Skin-tone groups from Fitzpatrick types: by default 1-3 = light, 4-6 = dark (SPEC section 6);
 * any mapping of types to K named groups may be given. A missing or unmapped type is 'unknown'.
 */
export const UNKNOWN = 'unknown';

/** Group name -> the Fitzpatrick types it holds. */
export type GroupMapping = Readonly<Record<string, readonly number[]>>;

export const LIGHT_DARK: GroupMapping = { light: [1, 2, 3], dark: [4, 5, 6] };

/** Checks that no Fitzpatrick type is in two groups and that types are integers 1-6. */
export function validateGroupMapping(mapping: GroupMapping): GroupMapping {
  const seen = new Map<number, string>();
  for (const [group, types] of Object.entries(mapping)) {
    if (group === UNKNOWN) throw new RangeError(`group mapping: '${UNKNOWN}' is reserved for missing values`);
    for (const t of types) {
      if (!Number.isInteger(t) || t < 1 || t > 6) throw new RangeError(`group mapping: '${group}' holds ${t}, not a Fitzpatrick type 1-6`);
      const other = seen.get(t);
      if (other) throw new RangeError(`group mapping: Fitzpatrick type ${t} is in both '${other}' and '${group}'`);
      seen.set(t, group);
    }
  }
  return mapping;
}

/** Parses a Fitzpatrick cell ('3', '3.0', 'III', '' ...) into 1-6, or undefined if missing/invalid. */
export function parseFitzpatrick(value: string | number | undefined | null): number | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value === 'number') return Number.isInteger(value) && value >= 1 && value <= 6 ? value : undefined;
  const s = value.trim().toUpperCase();
  if (s === '') return undefined;
  const roman = ['I', 'II', 'III', 'IV', 'V', 'VI'].indexOf(s.replace(/^(TYPE|FST|FITZPATRICK)\s*/, ''));
  if (roman >= 0) return roman + 1;
  const n = Number(s);
  return Number.isInteger(n) && n >= 1 && n <= 6 ? n : undefined;
}

/** The group of a Fitzpatrick type under a mapping ('unknown' when missing or unmapped). */
export function fitzpatrickGroup(type: number | undefined, mapping: GroupMapping = LIGHT_DARK): string {
  if (type === undefined) return UNKNOWN;
  for (const [group, types] of Object.entries(mapping)) if (types.includes(type)) return group;
  return UNKNOWN;
}
