import { describe, expect, it } from 'vitest';
import { floatToHalfBits } from '../../../src/onnx/float16.ts';

describe('floatToHalfBits', () => {
  it.each([
    [0, 0x0000], [-0, 0x8000], [1, 0x3c00], [-2, 0xc000], [0.5, 0x3800], [65504, 0x7bff], [65520, 0x7c00],
    [1e-8, 0x0000], [5.960464477539063e-8, 0x0001], [6.103515625e-5, 0x0400], [Infinity, 0x7c00], [-Infinity, 0xfc00],
    [0.1, 0x2e66], [1 + 2 ** -11, 0x3c00], [1 + 3 * 2 ** -11, 0x3c02],
  ])('%f -> %s', (value, bits) => {
    expect(floatToHalfBits(value)).toBe(bits);
  });

  it('NaN stays NaN', () => {
    const h = floatToHalfBits(NaN);
    expect((h & 0x7c00) === 0x7c00 && (h & 0x3ff) !== 0).toBe(true);
  });
});
