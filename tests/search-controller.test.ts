/**
 * The REINFORCE controller: its analytic gradient against central finite differences of the
 * surrogate (Eq. 3), and a seeded run that finds the known optimum of a synthetic reward.
 */
import { describe, it, expect } from 'vitest';
import { AutoregressivePolicy, ReinforceController, SeededRandom, sampleUniform, type Episode } from '../src/search/controller.js';
import { mulberry32 } from '../src/data/split.js';

describe('AutoregressivePolicy', () => {
  it('gradient of the REINFORCE surrogate equals central finite differences', () => {
    const sizes = [3, 4, 2, 5];
    const policy = new AutoregressivePolicy(sizes);
    const rng = new SeededRandom(11);
    for (let i = 0; i < policy.theta.length; i++) policy.theta[i] = (rng.next() - 0.5) * 2;
    const episodes: Episode[] = Array.from({ length: 6 }, () => ({ actions: policy.sample(rng), reward: rng.next() }));
    const baseline = 0.4;
    const gamma = 0.9;
    const g = policy.gradient(episodes, baseline, gamma);
    const h = 1e-5;
    let maxErr = 0;
    let maxAbs = 0;
    for (let i = 0; i < policy.theta.length; i++) {
      const plus = Float64Array.from(policy.theta);
      const minus = Float64Array.from(policy.theta);
      plus[i] += h;
      minus[i] -= h;
      const fd = (policy.surrogate(episodes, baseline, gamma, plus) - policy.surrogate(episodes, baseline, gamma, minus)) / (2 * h);
      maxErr = Math.max(maxErr, Math.abs(fd - g[i]));
      maxAbs = Math.max(maxAbs, Math.abs(fd));
    }
    expect(maxAbs).toBeGreaterThan(1e-3); // the check is not vacuous
    expect(maxErr).toBeLessThan(1e-8);
  });

  it('probabilities of later steps depend on earlier actions (autoregressive)', () => {
    const policy = new AutoregressivePolicy([2, 3]);
    const rng = new SeededRandom(3);
    for (let i = 0; i < policy.theta.length; i++) policy.theta[i] = rng.next() - 0.5;
    const p0 = policy.probabilities(1, [0]);
    const p1 = policy.probabilities(1, [1]);
    expect(Math.abs(p0[0] - p1[0])).toBeGreaterThan(1e-3);
    expect(p0.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 12);
  });

  it('SeededRandom gives the data/split mulberry32 sequence', () => {
    const a = new SeededRandom(123);
    const b = mulberry32(123);
    for (let i = 0; i < 10; i++) expect(a.next()).toBe(b());
  });
});

describe('ReinforceController', () => {
  const sizes = [3, 4, 2, 5, 3, 6];
  const target = [2, 0, 1, 3, 1, 4];
  // Partial credit per matching decision, plus a bonus that needs two decisions together, so the
  // optimum (the target, reward 1.5) is unique.
  const syntheticReward = (a: readonly number[]) => a.reduce((s, x, t) => s + (x === target[t] ? 1 : 0), 0) / a.length + (a[1] === target[1] && a[4] === target[4] ? 0.5 : 0);

  it('finds the known optimum of a synthetic reward (seeded), where the uniform policy rarely does', () => {
    const c = new ReinforceController(sizes, { learningRate: 0.1, gamma: 0.99, baselineDecay: 0.8 });
    const rng = new SeededRandom(2024);
    let best = { actions: [] as number[], reward: -Infinity };
    for (let it = 0; it < 150; it++) {
      const batch = Array.from({ length: 8 }, () => {
        const actions = c.policy.sample(rng);
        return { actions, reward: syntheticReward(actions) };
      });
      for (const e of batch) if (e.reward > best.reward) best = e;
      c.update(batch);
    }
    expect(c.policy.greedy()).toEqual(target);
    expect(best.actions).toEqual(target);
    const pGreedy = c.policy.logProbabilities(target).reduce((s, x) => s + x, 0);
    expect(Math.exp(pGreedy)).toBeGreaterThan(0.5);
    // Uniform chance of the target is 1/4320; the same 1200 uniform draws do not reliably hit it.
    const urng = new SeededRandom(2024);
    let hits = 0;
    for (let i = 0; i < 1200; i++) if (syntheticReward(sampleUniform(sizes, urng)) === 1.5) hits++;
    expect(hits).toBeLessThan(5);
  });

  it('the same seed gives the same parameters', () => {
    const run = () => {
      const c = new ReinforceController(sizes);
      const rng = new SeededRandom(5);
      for (let it = 0; it < 10; it++) c.update(Array.from({ length: 4 }, () => { const actions = c.policy.sample(rng); return { actions, reward: syntheticReward(actions) }; }));
      return Array.from(c.policy.theta);
    };
    expect(run()).toEqual(run());
  });
});
