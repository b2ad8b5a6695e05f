import { describe, expect, it } from 'vitest';
import { defaultThreads, usesMemoryPatterns } from '../../../src/runtime/execution-provider.ts';

const MB = 1024 * 1024;

describe('session defaults by model size', () => {
  it('keeps ONNX Runtime memory patterns for small models only', () => {
    // Small models save allocation time with them; a large model's planned block is fresh memory at every new shape.
    expect(usesMemoryPatterns(1 * MB)).toBe(true);
    expect(usesMemoryPatterns(64 * MB - 1)).toBe(true);
    expect(usesMemoryPatterns(64 * MB)).toBe(false);
    expect(usesMemoryPatterns(300 * MB)).toBe(false);
  });

  it('runs small models on one thread and large ones on up to four cores', () => {
    expect(defaultThreads(1 * MB, 8)).toBe(1);
    expect(defaultThreads(300 * MB, 2)).toBe(2);
    expect(defaultThreads(300 * MB, 16)).toBe(4);
  });
});
