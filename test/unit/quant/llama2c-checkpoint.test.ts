import { describe, expect, it } from 'vitest';
import { pairsToHalves, readLlama2cCheckpoint } from '../../../src/forge/llama2c-checkpoint.ts';
import { quantizePerColumn } from '../../../src/quant/int8-quantization.ts';

describe('pairsToHalves', () => {
  it('moves row 2i to i and row 2i+1 to i + hs/2 within each head', () => {
    // 2 heads of size 4, 1 input column: rows are labelled by their original index.
    const w = Float32Array.from([0, 1, 2, 3, 4, 5, 6, 7]);
    expect(Array.from(pairsToHalves(w, 2, 4, 1))).toEqual([0, 2, 1, 3, 4, 6, 5, 7]);
  });
});

function header(values: number[]): Uint8Array {
  return new Uint8Array(Int32Array.from(values).buffer);
}

describe('readLlama2cCheckpoint errors', () => {
  it('refuses a file shorter than the header', () => {
    expect(() => readLlama2cCheckpoint(new Uint8Array(10))).toThrow(/shorter than the header/);
  });
  it('refuses the versioned ak42 format by its magic', () => {
    expect(() => readLlama2cCheckpoint(header([0x616b3432, 1, 64, 172, 5, 8, 4]))).toThrow(/ak42/);
  });
  it('refuses an implausible header', () => {
    expect(() => readLlama2cCheckpoint(header([64, 172, 5, 7, 4, 512, 512]))).toThrow(/implausible header/);
  });
  it('refuses a truncated file', () => {
    const buf = new Uint8Array(28 + 100);
    buf.set(header([8, 16, 1, 2, 2, 4, 4]));
    expect(() => readLlama2cCheckpoint(buf)).toThrow(/truncated/);
  });
});

describe('quantizePerColumn', () => {
  it('scales each column by its max |value| / 127 and rounds', () => {
    const q = quantizePerColumn(Float32Array.from([1, -0.5, -2, 0.25, 0.5, 0]), 3, 2);
    expect(Array.from(q.scales)).toEqual([Math.fround(2 / 127), Math.fround(0.5 / 127)]);
    expect(Array.from(q.values)).toEqual([64, -127, -127, 64, 32, 0]);
  });
});
