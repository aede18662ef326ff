import { describe, expect, it } from 'vitest';
import { keepSetFromMedians, selectKeepSets, SelectionRuleError, type SelectLayer } from '../src/calibration/index.js';

const layers: SelectLayer[] = [
  { tap: 'a', kind: 'filters', medians: [0.5, -1, 0, 2, 0] },
  { tap: 'b', kind: 'filters', medians: [3, 1, -2, -2] },
  { tap: 'h', kind: 'heads', medians: [7, 9, 8] },
];
const keeps = (r: ReturnType<typeof selectKeepSets>) => Object.fromEntries(r.keepSets.map((k) => [k.tap, k.keep]));

describe('selectKeepSets: rules on hand-made medians', () => {
  it('threshold (default 0) keeps median > 0 and equals keepSetFromMedians', () => {
    const r = selectKeepSets(layers);
    expect(keeps(r)).toEqual({ a: [0, 3], b: [0, 1], h: [0, 1, 2] });
    for (const l of layers) expect(r.keepSets.find((k) => k.tap === l.tap)!.keep).toEqual(keepSetFromMedians(l.tap, l.kind, l.medians).keepSet.keep);
    expect(r.description).toBe('threshold 0, select skew, minKeep 1');
  });
  it('ratio removes round(ratio * n) lowest medians per layer; ties remove the higher index first', () => {
    // a: 0.4 * 5 = 2 -> -1 (1) and the later of the two zeros (4); b: 0.5 * 4 = 2 -> both -2.
    expect(keeps(selectKeepSets(layers, { ratio: 0.4 }))).toEqual({ a: [0, 2, 3], b: [0, 1], h: [1, 2] });
    expect(keeps(selectKeepSets(layers, { ratio: 0.5 }))).toEqual({ a: [0, 3], b: [0, 1], h: [1] }); // a: 2.5 -> 3
  });
  it('count removes that many per layer, minKeep holds and is reported', () => {
    const r = selectKeepSets(layers, { count: 4, minKeep: 2 });
    expect(keeps(r)).toEqual({ a: [0, 3], b: [0, 1], h: [1, 2] });
    expect(r.minKeepFired).toEqual(['a', 'b', 'h']);
  });
  it('globalRatio ranks units of one kind across layers; heads are ranked separately', () => {
    // filters: 9 units, round(0.45 * 9) = 4: -2 (b2), -2 (b3), -1 (a1), then a 0 (a4 before a2).
    const r = selectKeepSets(layers, { globalRatio: 0.45 });
    expect(keeps(r)).toEqual({ a: [0, 2, 3], b: [0, 1], h: [1, 2] }); // heads: round(1.35) = 1
  });
  it('globalRatio: a layer at minKeep passes its turn to the next-lowest unit elsewhere', () => {
    const two: SelectLayer[] = [
      { tap: 'x', kind: 'filters', medians: [-5, -4, -3] },
      { tap: 'y', kind: 'filters', medians: [1, 2, 3] },
    ];
    const r = selectKeepSets(two, { globalRatio: 0.5, minKeep: 1 });
    expect(keeps(r)).toEqual({ x: [2], y: [1, 2] });
    expect(r.minKeepFired).toEqual(['x']);
  });
  it('overrides replace the budget of a layer; exclude keeps a layer whole', () => {
    const r = selectKeepSets(layers, { ratio: 0.4, overrides: { b: { threshold: 2 } }, exclude: ['h'] });
    expect(keeps(r)).toEqual({ a: [0, 2, 3], b: [0], h: [0, 1, 2] });
    expect(r.description).toBe('ratio 0.4, select skew, minKeep 1, overrides {b: threshold 2}, exclude [h]');
  });
  it('rejects unknown layers, two budgets, bad ratios and missing l1 scores, naming them', () => {
    expect(() => selectKeepSets(layers, { exclude: ['zz'] })).toThrow(/exclude: 'zz' is not a tapped layer/);
    expect(() => selectKeepSets(layers, { overrides: { q: { ratio: 0.1 } } })).toThrow(/overrides: 'q'/);
    expect(() => selectKeepSets(layers, { ratio: 0.1, count: 2 })).toThrow(SelectionRuleError);
    expect(() => selectKeepSets(layers, { ratio: 1.5 })).toThrow(/ratio must be in \[0, 1\], got 1.5/);
    expect(() => selectKeepSets(layers, { ratio: 0.1 }, { select: 'l1' })).toThrow(/needs scores for layer 'a'/);
  });
});

describe('selectKeepSets: selections', () => {
  it('random is reproducible from its seed, differs across seeds, and removes the same counts as skew', () => {
    const big: SelectLayer[] = [{ tap: 'p', kind: 'patch', medians: Array.from({ length: 64 }, (_, i) => Math.sin(i)) }];
    const s1 = selectKeepSets(big, {}, { select: 'random', seed: 1 });
    expect(selectKeepSets(big, {}, { select: 'random', seed: 1 }).keepSets).toEqual(s1.keepSets);
    const s2 = selectKeepSets(big, {}, { select: 'random', seed: 2 });
    expect(s2.keepSets[0].keep).not.toEqual(s1.keepSets[0].keep);
    const skew = selectKeepSets(big);
    expect(s1.keepSets[0].keep.length).toBe(skew.keepSets[0].keep.length);
    expect(s1.keepSets[0].keep).not.toEqual(skew.keepSets[0].keep);
    expect(s1.description).toBe('threshold 0, select random (seed 1), minKeep 1');
  });
  it('l1 removes the lowest scores, at the budget the rule sets', () => {
    const r = selectKeepSets(layers, { ratio: 0.4 }, { select: 'l1', scores: { a: [5, 4, 3, 2, 1], b: [1, 2, 3, 4], h: [3, 1, 2] } });
    expect(keeps(r)).toEqual({ a: [0, 1, 2], b: [2, 3], h: [0, 2] });
    // threshold under l1: as many per layer as the skew threshold removes (a 3, b 2, h 0).
    expect(keeps(selectKeepSets(layers, {}, { select: 'l1', scores: { a: [5, 4, 3, 2, 1], b: [1, 2, 3, 4], h: [3, 1, 2] } }))).toEqual({ a: [0, 1], b: [2, 3], h: [0, 1, 2] });
  });
});
