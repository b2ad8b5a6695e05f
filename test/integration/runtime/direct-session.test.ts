// Direct CPU sessions (runtime/ort-session.ts): a pass without an event-loop turn, with the same results as
// onnxruntime-node's public session, and clear errors.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import ort from 'onnxruntime-node';
import { Decoder } from '../../../src/runtime/decoder.ts';
import { TextTokenizer } from '../../../src/runtime/tokenizer.ts';
import { generate } from '../../helpers/plain-generation.ts';
import { GREEDY } from '../../../src/runtime/sampling.ts';
import { createCpuSession, hasDirectRuns } from '../../../src/runtime/ort-session.ts';
import { storiesModel } from '../../helpers/model-fixtures.ts';
import { requireSharedModels } from '../../helpers/shared-models.ts';

requireSharedModels('direct sessions on stories260K');

/** Whether the event loop had a turn while `work` ran. */
async function turnedDuring(work: () => Promise<unknown>): Promise<boolean> {
  let turned = false;
  const marker = setImmediate(() => (turned = true));
  await work();
  clearImmediate(marker);
  return turned;
}

describe('direct sessions', () => {
  let direct: Decoder;
  let viaPublic: Decoder;
  let tokenizer: TextTokenizer;
  beforeAll(async () => {
    const dir = storiesModel();
    direct = await Decoder.open(dir);
    viaPublic = await Decoder.open(dir, { directRuns: false });
    tokenizer = TextTokenizer.load(dir);
  });
  afterAll(async () => {
    await direct.close();
    await viaPublic.close();
  });

  it('the pinned onnxruntime-node has the binding they need', () => {
    expect(hasDirectRuns()).toBe(true);
  });

  it('a CPU decoder passes without an event-loop turn; on public sessions each pass takes one', async () => {
    expect(direct.runsDirectly).toBe(true);
    expect(viaPublic.runsDirectly).toBe(false);
    const prompt = tokenizer.encode('Once upon a time');
    expect(await turnedDuring(() => direct.forward([{ cache: direct.newCache(), tokens: prompt }]))).toBe(false);
    expect(await turnedDuring(() => viaPublic.forward([{ cache: viaPublic.newCache(), tokens: prompt }]))).toBe(true);
  });

  it('gives the same logits and the same greedy text as the public session', async () => {
    const prompt = tokenizer.encode('Tom and Sue went to the park');
    const [a] = await direct.forward([{ cache: direct.newCache(), tokens: prompt }]);
    const [b] = await viaPublic.forward([{ cache: viaPublic.newCache(), tokens: prompt }]);
    expect(a.map((row) => Array.from(row))).toEqual(b.map((row) => Array.from(row)));
    const x = await generate(direct, tokenizer, prompt, { maxTokens: 80, sampling: GREEDY });
    const y = await generate(viaPublic, tokenizer, prompt, { maxTokens: 80, sampling: GREEDY });
    expect(x.tokens).toHaveLength(80);
    expect(x.tokens).toEqual(y.tokens);
  });

  it('names a missing input, and refuses to run once released', async () => {
    const session = await createCpuSession(`${storiesModel()}/onnx/model.onnx`, { intraOpNumThreads: 1 });
    expect(session.inputNames).toContain('input_ids');
    expect(session.outputNames).toContain('logits');
    const ids = session.inputMetadata.find((m) => m.name === 'input_ids');
    expect(ids).toMatchObject({ isTensor: true, type: 'int64' });
    await expect(session.run({ input_ids: new ort.Tensor('int64', BigInt64Array.of(1n), [1, 1]) })).rejects.toThrow(/input 'attention_mask' is missing/);
    await session.release();
    await session.release(); // twice is harmless
    await expect(session.run({})).rejects.toThrow(/after release/);
  });

  it('a model that cannot load fails with ONNX Runtime\'s own message', async () => {
    await expect(createCpuSession(Uint8Array.of(8, 1, 18, 3, 1, 2), {})).rejects.toThrow(/protobuf|load model|Load model/i);
  });
});
