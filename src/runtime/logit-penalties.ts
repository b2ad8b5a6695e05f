// Logit bias and repetition penalties as pure functions of a row of logits and the tokens before its position, so that
// a verified position j is penalised with the committed tokens and the draft tokens before j, exactly as plain decoding
// would have had them committed (vLLM refuses logit_bias when speculating; here speculation stays exact).
//
// Applied in vLLM's order of effect: logit_bias (OpenAI: added to the logit), then repetition_penalty (HF / vLLM: a
// token seen in the prompt or the output has a positive logit divided by it, a negative one multiplied), then
// frequency and presence penalties (OpenAI: minus count * frequency, minus presence if count > 0, over the output).

export interface LogitPenalties {
  /** [token id, bias] pairs (OpenAI: -100..100). */
  logitBias: [number, number][];
  presence: number;
  frequency: number;
  /** 1: off. */
  repetition: number;
}

export function hasPenalties(p: LogitPenalties | undefined): p is LogitPenalties {
  return !!p && (p.logitBias.length > 0 || p.presence !== 0 || p.frequency !== 0 || p.repetition !== 1);
}

/**
 * `logits` penalised (a copy) for a position after `prompt`, the `output` committed so far and `draft` (the draft
 * tokens before this position, which count as output).
 */
export function penalize(logits: Float32Array, p: LogitPenalties, prompt: readonly number[], output: readonly number[],
  draft: readonly number[] = []): Float32Array {
  const out = logits.slice();
  for (const [id, bias] of p.logitBias) if (id < out.length) out[id] += bias;
  if (p.repetition === 1 && p.presence === 0 && p.frequency === 0) return out;
  const counts = new Map<number, number>();
  for (const list of [output, draft]) for (const t of list) counts.set(t, (counts.get(t) ?? 0) + 1);
  if (p.repetition !== 1) {
    const seen = new Set<number>(prompt);
    for (const t of counts.keys()) seen.add(t);
    for (const t of seen) if (t < out.length) out[t] = out[t] > 0 ? out[t] / p.repetition : out[t] * p.repetition;
  }
  if (p.presence !== 0 || p.frequency !== 0) {
    for (const [t, c] of counts) if (t < out.length) out[t] -= c * p.frequency + p.presence;
  }
  return out;
}
