// Largest elementwise difference between two float vectors of the same length (logits, KV): how tests compare passes
// that should agree up to rounding.
import { expect } from 'vitest';

export function maxDiff(a: Float32Array, b: Float32Array): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}
