// GGUF read and written back unchanged, and widened by the same rules as our ONNX widening: the original weights in
// the top-left block, zeros elsewhere, norm gains times sqrt(d/D), eps times d/D, all-zero extra layers, the llama
// header updated and the tokenizer metadata kept, all read back by our own reader. (That llama.cpp's greedy text from
// the widened file equals the original's is checked by bench:goodput, which has llama.cpp: bench/peers.)
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readGguf, widenGguf, writeGguf } from '../../../src/forge/gguf.ts';
import { requireSharedModels, scratchDir, SHARED_MODELS } from '../../helpers/shared-models.ts';

requireSharedModels('GGUF widening');
const SOURCE = join(SHARED_MODELS, 'stories260K/stories260K.gguf');

const u32 = (raw: Uint8Array) => new DataView(raw.buffer, raw.byteOffset, raw.byteLength).getUint32(0, true);
const f32 = (raw: Uint8Array) => new DataView(raw.buffer, raw.byteOffset, raw.byteLength).getFloat32(0, true);

describe('GGUF', () => {
  it('reads stories260K.gguf and writes it back byte for byte', () => {
    const out = join(scratchDir('gguf'), 'copy.gguf');
    writeGguf(out, readGguf(SOURCE));
    expect(Buffer.compare(readFileSync(out), readFileSync(SOURCE))).toBe(0);
  });

  it('widens by the ONNX widening rules', () => {
    const out = join(scratchDir('gguf'), 'wide.gguf');
    widenGguf(SOURCE, out, { hiddenSize: 128, intermediateSize: 256, numLayers: 7 });
    const a = readGguf(SOURCE);
    const b = readGguf(out);
    const meta = (g: typeof a, k: string) => g.metadata.get(k)!;
    expect(u32(meta(b, 'llama.embedding_length').raw)).toBe(128);
    expect(u32(meta(b, 'llama.feed_forward_length').raw)).toBe(256);
    expect(u32(meta(b, 'llama.block_count').raw)).toBe(7);
    expect(u32(meta(b, 'llama.attention.head_count').raw)).toBe(16); // head size 8 kept
    expect(u32(meta(b, 'llama.attention.head_count_kv').raw)).toBe(8); // GQA group 2 kept
    expect(f32(meta(b, 'llama.attention.layer_norm_rms_epsilon').raw)).toBeCloseTo(f32(meta(a, 'llama.attention.layer_norm_rms_epsilon').raw) / 2, 12);
    expect(meta(b, 'tokenizer.ggml.tokens').raw).toEqual(meta(a, 'tokenizer.ggml.tokens').raw);

    const tensor = (g: typeof a, name: string) => g.tensors.find((t) => t.name === name)!;
    const q0 = tensor(a, 'blk.0.attn_q.weight');
    const q1 = tensor(b, 'blk.0.attn_q.weight');
    expect(q1.dims).toEqual([128, 128]);
    for (let r = 0; r < 128; r++) {
      for (let c = 0; c < 128; c++) expect(q1.data[r * 128 + c]).toBe(r < 64 && c < 64 ? q0.data[r * 64 + c] : 0);
    }
    expect(tensor(b, 'blk.0.attn_k.weight').dims).toEqual([128, 64]);
    expect(tensor(b, 'blk.0.ffn_down.weight').dims).toEqual([256, 128]);
    expect(tensor(b, 'token_embd.weight').dims).toEqual([128, 512]);
    const n0 = tensor(a, 'blk.0.attn_norm.weight');
    const n1 = tensor(b, 'blk.0.attn_norm.weight');
    expect(Array.from(n1.data.subarray(0, 64))).toEqual(Array.from(n0.data, (x) => Math.fround(x * Math.sqrt(0.5))));
    expect(n1.data.subarray(64).every((x) => x === 0)).toBe(true);
    expect(b.tensors.filter((t) => t.name.startsWith('blk.6.')).every((t) => t.data.every((x) => x === 0))).toBe(true);
    expect(b.tensors.length).toBe(a.tensors.length + 2 * 9);
  });
});
