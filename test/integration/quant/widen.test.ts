// `specserve widen`: a model that computes stories260K's function at the cost of a larger one. Greedy output equal to
// the original's on the oracle ids, the preset's shapes, quantized variants that load and agree, and external data for
// weights too large for one protobuf message.
import { beforeAll, describe, expect, it } from 'vitest';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { specserve } from '../../helpers/cli.ts';
import { argmax, ortGreedy, ortTeacherForced } from '../../helpers/ort-greedy.ts';
import { scratchDir, stories, STORIES_ORACLE_IDS } from '../../helpers/shared-models.ts';
import { buildRandomModel, randomConfig } from '../../../src/forge/forge.ts';
import { Decoder } from '../../../src/runtime/decoder.ts';
import { randomWeights, parameterCount } from '../../../src/forge/random-weights.ts';
import { buildLlamaGraph } from '../../../src/forge/llama-graph.ts';
import { modelFiles, loadExternalData } from '../../../src/onnx/external-data.ts';
import { decodeModel, graphOf, type ModelProto } from '../../../src/onnx/onnx-proto.ts';
import { addFileAtomically, writeModelFolder } from '../../../src/forge/model-folder-writer.ts';
import { widenWeights, padMatrix } from '../../../src/forge/widen.ts';

describe('specserve widen on the real stories260K', () => {
  let dir: string;

  beforeAll(() => {
    dir = join(scratchDir('widen'), 'wide-100m');
    const r = specserve('widen', stories.checkpoint, '--tokenizer', stories.tokenizer, '--preset', 'wide-100m', '--out', dir,
      '--dtype', 'fp32,fp16,int8');
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/78\.\d+M parameters: hidden 768, 12 layers, 96 heads/);
  }, 120_000);

  it('has the preset shapes: head size kept, heads and KV heads grown in the same ratio', () => {
    const c = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
    expect([c.hidden_size, c.intermediate_size, c.num_hidden_layers, c.num_attention_heads, c.num_key_value_heads, c.head_dim])
      .toEqual([768, 2048, 12, 96, 48, 8]);
    expect(c.rms_norm_eps).toBeCloseTo(1e-5 * 64 / 768, 12);
    // 78M float32 parameters in the file, a little over 4 bytes each
    expect(statSync(join(dir, 'onnx/model.onnx')).size).toBeGreaterThan(78e6 * 4);
  });

  it('fp32 greedy from BOS is the original stories260K oracle, 64 tokens', async () => {
    const run = await ortGreedy(join(dir, 'onnx/model.onnx'), [1], 64);
    expect(run.ids).toEqual(STORIES_ORACLE_IDS);
  }, 60_000);

  it.each(['fp16', 'int8'])('the %s variant loads and agrees with the oracle teacher-forced (at least 95 percent)', async (dtype) => {
    const logits = await ortTeacherForced(join(dir, `onnx/model_${dtype}.onnx`), [1, ...STORIES_ORACLE_IDS.slice(0, 63)]);
    const agree = logits.filter((row, i) => argmax(row) === STORIES_ORACLE_IDS[i]).length;
    expect(agree / 64).toBeGreaterThanOrEqual(0.95);
  }, 60_000);

  it('refuses shapes it cannot preserve the function in, naming the reason', () => {
    const r = specserve('widen', stories.checkpoint, '--tokenizer', stories.tokenizer, '--hidden', '100', '--out', join(scratchDir('widen'), 'x'));
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/multiple of the head size 8/);
    const smaller = specserve('widen', stories.checkpoint, '--tokenizer', stories.tokenizer, '--layers', '2', '--out', join(scratchDir('widen'), 'y'));
    expect(smaller.stderr).toMatch(/layers 2 must be an integer >= the source's 5/);
  });
});

describe('widening arithmetic', () => {
  it('pads a matrix into the top-left block of zeros', () => {
    expect(Array.from(padMatrix(Float32Array.of(1, 2, 3, 4, 5, 6), 2, 3, 3, 4))).toEqual([1, 2, 3, 0, 4, 5, 6, 0, 0, 0, 0, 0]);
  });

  it('widens a random GQA model to the same logits (fp32 graph, ONNX Runtime)', async () => {
    const config = randomConfig({ preset: 'tiny' });
    const weights = randomWeights(config, 7);
    const wide = widenWeights(config, weights, { hiddenSize: 256, intermediateSize: 300, numLayers: 4 });
    expect(wide.config.numHeads).toBe(16);
    expect(wide.config.numKvHeads).toBe(8);
    expect(parameterCount(wide.config)).toBeGreaterThan(parameterCount(config));
    const base = scratchDir('widen-unit');
    const write = (name: string, c: typeof config, w: typeof weights) => {
      writeModelFolder(join(base, name), { 'onnx/model.onnx': modelFiles(buildLlamaGraph(c, w) as ModelProto, 'model.onnx')['model.onnx'] });
      return join(base, name, 'onnx/model.onnx');
    };
    const prompt = [1, 17, 300, 42, 5, 99];
    const a = await ortTeacherForced(write('small', config, weights), prompt);
    const b = await ortTeacherForced(write('wide', wide.config, wide.weights), prompt);
    let maxErr = 0;
    a.forEach((row, i) => row.forEach((v, j) => (maxErr = Math.max(maxErr, Math.abs(v - b[i][j])))));
    expect(maxErr).toBeLessThan(1e-4);
  });
});

describe('external data', () => {
  it('writes weights beside the graph, and ONNX Runtime and the forge read them back to the same model', async () => {
    const config = randomConfig({ preset: 'tiny' });
    const weights = randomWeights(config, 3);
    const base = scratchDir('external');
    const inline = modelFiles(buildLlamaGraph(config, weights) as ModelProto, 'model.onnx');
    const external = modelFiles(buildLlamaGraph(config, weights) as ModelProto, 'model.onnx', 0);
    expect(Object.keys(inline)).toEqual(['model.onnx']);
    expect(Object.keys(external)).toEqual(['model.onnx', 'model.onnx_data']);
    writeModelFolder(join(base, 'inline'), { 'onnx/model.onnx': inline['model.onnx'] });
    writeModelFolder(join(base, 'external'), Object.fromEntries(Object.entries(external).map(([k, v]) => [`onnx/${k}`, v])));
    const graphFile = join(base, 'external/onnx/model.onnx');
    expect(statSync(graphFile).size).toBeLessThan(statSync(join(base, 'inline/onnx/model.onnx')).size / 10);
    expect(existsSync(join(base, 'external/onnx/model.onnx_data'))).toBe(true);

    const prompt = [1, 2, 3, 4];
    expect(await ortTeacherForced(graphFile, prompt)).toEqual(await ortTeacherForced(join(base, 'inline/onnx/model.onnx'), prompt));
    const back = loadExternalData(decodeModel(readFileSync(graphFile)), join(base, 'external/onnx'));
    const original = decodeModel(readFileSync(join(base, 'inline/onnx/model.onnx')));
    const bytes = (m: ModelProto) => graphOf(m).initializer.map((t) => Buffer.from(t.rawData ?? []).toString('base64'));
    expect(bytes(back)).toEqual(bytes(original));
  });

  it('runs with the runtime\'s derived graph (attention bias from JS, appended KV) beside its external data, as without', async () => {
    const dir = join(scratchDir('external'), 'model');
    buildRandomModel(dir, { preset: 'tiny', seed: 4 });
    const files = modelFiles(decodeModel(readFileSync(join(dir, 'onnx/model.onnx'))), 'model.onnx', 0);
    for (const [name, contents] of Object.entries(files)) addFileAtomically(join(dir, 'onnx', name), contents);
    const derived = await Decoder.open(dir);
    const plain = await Decoder.open(dir, { biasInput: false });
    expect([derived.feedsAttentionBias, derived.appendsKv, plain.feedsAttentionBias]).toEqual([true, true, false]);
    expect(readdirSync(join(dir, 'onnx')).sort()).toEqual(['model.onnx', 'model.onnx_data']); // the derived file is gone
    const run = async (d: Decoder) => {
      const cache = d.newCache();
      const first = (await d.forward([{ cache, tokens: [1, 5, 9, 200] }]))[0].map((l) => l.slice());
      return [...first, ...(await d.forward([{ cache, tokens: [7] }]))[0]];
    };
    const [a, b] = [await run(derived), await run(plain)];
    let worst = 0;
    a.forEach((row, i) => row.forEach((v, j) => (worst = Math.max(worst, Math.abs(v - b[i][j])))));
    expect(worst).toBeLessThan(1e-4);
    await derived.close();
    await plain.close();
  });

  it('refuses an external location outside the model folder', () => {
    const config = randomConfig({ preset: 'tiny' });
    const model = buildLlamaGraph(config, randomWeights(config, 3)) as ModelProto;
    modelFiles(model, 'model.onnx', 0);
    const t = graphOf(model).initializer.find((x) => x.dataLocation === 1)!;
    t.externalData = [{ key: 'location', value: '../../etc/passwd' }];
    expect(() => loadExternalData(model, scratchDir('external'))).toThrow(/is not a file beside the model/);
  });
});
