/**
 * BiaslessNAS reward (Eq. 2): R = alpha*A - beta*U when the accuracy A reaches the constraint AC,
 * else -1. U is the unfairness score (fairness.ts).
 */
export interface RewardWeights {
  alpha: number;
  beta: number;
}

/** The paper's presets: BiaslessNAS-Fair and BiaslessNAS-Acc. */
export const REWARD_PRESETS = {
  fair: { alpha: 0.2, beta: 0.8 },
  acc: { alpha: 0.8, beta: 0.2 },
} as const satisfies Record<string, RewardWeights>;

export interface RewardOptions extends Partial<RewardWeights> {
  /** A preset for alpha and beta (explicit alpha/beta override it). Default 'fair'. */
  preset?: keyof typeof REWARD_PRESETS;
  /** Accuracy constraint AC, a fraction (default 0: no constraint). */
  AC?: number;
}

export function reward(accuracy: number, unfairness: number, options: RewardOptions = {}): number {
  const preset = REWARD_PRESETS[options.preset ?? 'fair'];
  if (!preset) throw new RangeError(`unknown reward preset '${String(options.preset)}' (known: ${Object.keys(REWARD_PRESETS).join(', ')})`);
  const alpha = options.alpha ?? preset.alpha;
  const beta = options.beta ?? preset.beta;
  const ac = options.AC ?? 0;
  if (![accuracy, unfairness, alpha, beta, ac].every(Number.isFinite)) {
    throw new RangeError(`reward: non-finite input (A=${accuracy}, U=${unfairness}, alpha=${alpha}, beta=${beta}, AC=${ac})`);
  }
  return accuracy >= ac ? alpha * accuracy - beta * unfairness : -1;
}
