// Loading model folders: ours in every dtype, onnxruntime-genai exports, and clear errors for what cannot run.
import { describe, expect, it } from 'vitest';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Decoder } from '../../../src/runtime/decoder.ts';
import { openModelFolder } from '../../../src/runtime/model-folder.ts';
import { TextTokenizer } from '../../../src/runtime/tokenizer.ts';
import { createSession } from '../../../src/runtime/execution-provider.ts';
import { tinyModel } from '../../helpers/model-fixtures.ts';
import { requireSharedModels, scratchDir, SHARED_MODELS } from '../../helpers/shared-models.ts';

const fixtures = join(SHARED_MODELS, 'random-fixtures');
requireSharedModels('foreign model folders');

describe('model folders', () => {
  const dir = tinyModel({ seed: 2 }, ['fp16', 'int8']);

  it.each(['fp32', 'fp16', 'int8'] as const)('opens our %s file and discovers its KV type from the session', async (dtype) => {
    const d = await Decoder.open(dir, { dtype });
    expect(d.kvType).toBe(dtype === 'fp16' ? 'float16' : 'float32');
    const cache = d.newCache();
    const [logits] = await d.forward([{ cache, tokens: [1, 2, 3] }]);
    expect(logits).toHaveLength(3);
    expect(logits[2]).toHaveLength(512);
    expect(logits[2].every(Number.isFinite)).toBe(true);
    await d.close();
  });

  it('names the missing file, the missing config and an unknown dtype', () => {
    expect(() => openModelFolder(dir, 'q4')).toThrow(/no q4 model: .*model_q4\.onnx not found/);
    const empty = scratchDir('empty');
    expect(() => openModelFolder(empty)).toThrow(/neither config\.json nor genai_config\.json/);
    expect(() => openModelFolder(join(empty, 'nope'))).toThrow(/does not exist/);
    expect(() => openModelFolder(dir, 'int3' as never)).toThrow(/unknown dtype "int3"/);
  });

  it('refuses a graph without the expected inputs', async () => {
    const bad = scratchDir('bad');
    mkdirSync(join(bad, 'onnx'));
    writeFileSync(join(bad, 'config.json'), JSON.stringify({ num_attention_heads: 1, hidden_size: 2, num_hidden_layers: 1, vocab_size: 2 }));
    // A valid ONNX graph with the wrong interface: Identity(x) -> y.
    const { GraphBuilder } = await import('../../../src/onnx/graph-builder.ts');
    const { encodeModel, DataType } = await import('../../../src/onnx/onnx-proto.ts');
    const g = new GraphBuilder();
    g.input('x', DataType.FLOAT, [1]);
    g.op1('Identity', ['x'], {}, 'y');
    g.output('y', DataType.FLOAT, [1]);
    writeFileSync(join(bad, 'onnx/model.onnx'), encodeModel(g.toModel({ opset: 17, producer: 't', graphName: 'g' })));
    await expect(Decoder.open(bad)).rejects.toThrow(/no "input_ids" input/);
  });

  it('device auto falls back to CPU with one log line; device cuda fails with a clear error', async () => {
    const lines: string[] = [];
    const path = openModelFolder(dir).modelPath;
    const auto = await createSession(path, 1, { device: 'auto', threads: 1, log: (l) => lines.push(l) });
    // No CUDA provider library in the npm package on this machine: auto must land on CPU and say so.
    if (auto.device === 'cpu') {
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatch(/CUDA execution provider unavailable.*using CPU/);
      await expect(createSession(path, 1, { device: 'cuda', threads: 1 })).rejects.toThrow(/--device cuda: the CUDA execution provider could not start/);
    }
    await auto.session.release();
  });
});

describe('foreign folders (onnxruntime-genai random fixtures)', () => {
  it('loads the Llama fp16 export (com.microsoft ops, fp16 KV and logits) and runs a batched forward', async () => {
    const llama = join(fixtures, 'ortgenai-tiny-random-LlamaForCausalLM-fp16');
    const folder = openModelFolder(llama);
    expect(folder).toMatchObject({ layout: 'genai', numLayers: 2, numKvHeads: 1, headDim: 16, vocabSize: 32000, eosTokenIds: [1] });
    const d = await Decoder.open(llama);
    expect(d.kvType).toBe('float16');
    const caches = [d.newCache(), d.newCache()];
    const out = await d.forward([{ cache: caches[0], tokens: [0, 100, 200] }, { cache: caches[1], tokens: [0, 5] }]);
    expect(out[0]).toHaveLength(3);
    expect(out[0][0]).toHaveLength(32000);
    expect(out.flat().every((l) => l.every(Number.isFinite))).toBe(true);
    expect(caches.map((c) => c.length)).toEqual([3, 2]);
    const tokenizer = TextTokenizer.load(llama);
    expect(tokenizer.decode(tokenizer.encode('Hello world'))).toBe('Hello world');
    await d.close();
  });

  it('reports clearly that the GPT-2 export with stacked past_N caches cannot run', async () => {
    await expect(Decoder.open(join(fixtures, 'ortgenai-tiny-random-gpt2-fp32'))).rejects.toThrow(/stacked past_N caches/);
  });
});
