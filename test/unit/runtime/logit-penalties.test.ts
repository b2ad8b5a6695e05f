// logit_bias and penalties as pure functions: each rule alone, the order, drafts counting as output.
import { describe, expect, it } from 'vitest';
import { hasPenalties, penalize, type LogitPenalties } from '../../../src/runtime/logit-penalties.ts';

const none: LogitPenalties = { logitBias: [], presence: 0, frequency: 0, repetition: 1 };
const logits = () => Float32Array.of(2, -2, 1, 0.5, 4);

describe('logit penalties', () => {
  it('is off only when every part is', () => {
    expect(hasPenalties(none)).toBe(false);
    expect(hasPenalties(undefined)).toBe(false);
    expect(hasPenalties({ ...none, repetition: 1.1 })).toBe(true);
    expect(hasPenalties({ ...none, logitBias: [[1, 0]] })).toBe(true);
  });

  it('logit_bias adds; ids beyond the logits are ignored; the input is not changed', () => {
    const l = logits();
    expect(Array.from(penalize(l, { ...none, logitBias: [[0, -100], [4, 1.5], [9, 3]] }, [], []))).toEqual([-98, -2, 1, 0.5, 5.5]);
    expect(Array.from(l)).toEqual(Array.from(logits()));
  });

  it('repetition divides positive and multiplies negative logits of tokens in the prompt or the output, once each', () => {
    expect(Array.from(penalize(logits(), { ...none, repetition: 2 }, [0, 0, 1], [2, 2]))).toEqual([1, -4, 0.5, 0.5, 4]);
  });

  it('frequency and presence count the output and the draft before the position, not the prompt', () => {
    const p = { ...none, presence: 0.5, frequency: 0.25 };
    expect(Array.from(penalize(logits(), p, [4, 4], [2, 2], [2, 3]))).toEqual([2, -2, 1 - 3 * 0.25 - 0.5, 0.5 - 0.25 - 0.5, 4]);
  });

  it('applies logit_bias, then repetition, then frequency and presence', () => {
    const p = { logitBias: [[0, 2]] as [number, number][], presence: 1, frequency: 0, repetition: 2 };
    // token 0: (2 + 2) / 2 - 1 = 1
    expect(penalize(logits(), p, [], [0])[0]).toBe(1);
  });
});
