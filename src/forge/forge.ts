// The forge's operations, each producing a complete model folder: random weights, llama2.c conversion, early-exit
// drafts, and dtype variants. The CLI (src/cli.ts) only parses flags and reports progress.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fromHfConfig, toHfConfig, validateLlamaConfig, type LlamaConfig } from './llama-config.ts';
import type { LlamaWeights } from './llama-weights.ts';
import { buildLlamaGraph, weightNames } from './llama-graph.ts';
import { decodeModel, graphOf, tensorToFloat32, type ModelProto } from '../onnx/onnx-proto.ts';
import { loadExternalData, modelFiles } from '../onnx/external-data.ts';
import { DTYPE_FILES } from '../onnx/dtype-files.ts';
import { widenPresets, widenWeights, type WidenShape } from './widen.ts';
import { randomWeights, randomPresets } from './random-weights.ts';
import { readLlama2cCheckpoint } from './llama2c-checkpoint.ts';
import { llama2cToTokenizerJson, llamaTokenizerConfig, readLlama2cTokenizer, type Llama2cVocab } from './llama2c-tokenizer.ts';
import { syntheticVocab } from './synthetic-vocab.ts';
import { assertOutputFree, addFileAtomically, writeModelFolder, type FolderFiles } from './model-folder-writer.ts';
import { convertToFp16 } from '../quant/fp16-conversion.ts';
import { quantizeToInt8 } from '../quant/int8-quantization.ts';

export type Progress = (stage: string, done: number, total: number) => void;
const silent: Progress = () => {};

/** transformers.js dtype names -> file names under onnx/. */
/** The variants the forge writes (DTYPE_FILES names their files). */
export const FORGE_DTYPES = ['fp32', 'fp16', 'int8'] as const;
export type ForgeDtype = (typeof FORGE_DTYPES)[number];

function folderFiles(c: LlamaConfig, w: LlamaWeights, tokenizer: { json: Record<string, unknown>; config: Record<string, unknown> },
  progress: Progress, dtypes: readonly ForgeDtype[] = ['fp32']): FolderFiles {
  const files: FolderFiles = {
    'config.json': toHfConfig(c),
    'generation_config.json': { bos_token_id: c.bosTokenId, eos_token_id: c.eosTokenId, max_length: c.maxPositionEmbeddings },
    'tokenizer.json': tokenizer.json,
    'tokenizer_config.json': tokenizer.config,
  };
  dtypes.forEach((dtype, i) => {
    progress(`build ${dtype} graph`, i, dtypes.length);
    // The builder's plain object has every repeated field present, as a decoded model does (the converters' input).
    const graph = buildLlamaGraph(c, w) as ModelProto;
    const model = dtype === 'fp16' ? convertToFp16(graph) : dtype === 'int8' ? quantizeToInt8(graph) : graph;
    for (const [name, contents] of Object.entries(modelFiles(model, DTYPE_FILES[dtype]))) files[`onnx/${name}`] = contents;
  });
  progress('encode', dtypes.length, dtypes.length);
  return files;
}

function vocabTokenizer(vocab: Llama2cVocab, maxLen: number) {
  return { json: llama2cToTokenizerJson(vocab), config: llamaTokenizerConfig(maxLen) };
}

export interface RandomModelOptions {
  preset?: string;
  hiddenSize?: number;
  intermediateSize?: number;
  numLayers?: number;
  numHeads?: number;
  numKvHeads?: number;
  vocabSize?: number;
  maxPositionEmbeddings?: number;
  tieWordEmbeddings?: boolean;
  seed?: number;
}

export function randomConfig(o: RandomModelOptions): LlamaConfig {
  const preset = randomPresets[o.preset ?? 'tiny'];
  if (!preset) throw new Error(`unknown preset "${o.preset}" (known: ${Object.keys(randomPresets).join(', ')})`);
  const p = { ...preset, ...Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) };
  return validateLlamaConfig({
    hiddenSize: p.hiddenSize, intermediateSize: p.intermediateSize, numLayers: p.numLayers, numHeads: p.numHeads,
    numKvHeads: p.numKvHeads, headDim: p.hiddenSize / p.numHeads, vocabSize: p.vocabSize,
    maxPositionEmbeddings: p.maxPositionEmbeddings, rmsNormEps: 1e-5, ropeTheta: 10000,
    tieWordEmbeddings: o.tieWordEmbeddings ?? true, bosTokenId: 1, eosTokenId: 2,
  });
}

export function buildRandomModel(out: string, o: RandomModelOptions, progress: Progress = silent): LlamaConfig {
  assertOutputFree(out);
  const config = randomConfig(o);
  const weights = randomWeights(config, o.seed ?? 1);
  writeModelFolder(out, folderFiles(config, weights, vocabTokenizer(syntheticVocab(config.vocabSize), config.maxPositionEmbeddings), progress));
  return config;
}

export function convertLlama2c(checkpointPath: string, tokenizerPath: string, out: string, progress: Progress = silent): LlamaConfig {
  assertOutputFree(out);
  const { config, weights } = readLlama2cCheckpoint(readFileSync(checkpointPath), (d, t) => progress('convert layers', d, t));
  const vocab = readLlama2cTokenizer(readFileSync(tokenizerPath), config.vocabSize);
  writeModelFolder(out, folderFiles(config, weights, vocabTokenizer(vocab, config.maxPositionEmbeddings), progress));
  return config;
}

function readJson(path: string): Record<string, unknown> {
  if (!existsSync(path)) throw new Error(`${path} not found`);
  return JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
}

/** Weights of a folder this forge wrote, read back from its fp32 graph by initializer name. */
export function readForgedWeights(dir: string): { config: LlamaConfig; weights: LlamaWeights } {
  const config = fromHfConfig(readJson(join(dir, 'config.json')));
  const model = readModel(dir, 'fp32');
  const init = new Map(graphOf(model).initializer.map((t) => [t.name!, t]));
  const get = (name: string) => {
    const t = init.get(name);
    if (!t) throw new Error(`${dir}: initializer "${name}" not found; only folders built by specserve can be read back`);
    return tensorToFloat32(t);
  };
  const layers = Array.from({ length: config.numLayers }, (_, i) => {
    const n = weightNames.layer(i);
    return {
      inputNorm: get(n.inputNorm), q: get(n.q), k: get(n.k), v: get(n.v), o: get(n.o), postNorm: get(n.postNorm),
      gate: get(n.gate), up: get(n.up), down: get(n.down),
    };
  });
  return { config, weights: { embed: get(weightNames.embed), layers, finalNorm: get(weightNames.finalNorm), lmHead: get(weightNames.lmHead) } };
}

export function readModel(dir: string, dtype: ForgeDtype): ModelProto {
  const path = join(dir, 'onnx', DTYPE_FILES[dtype]);
  if (!existsSync(path)) throw new Error(`${path} not found`);
  return loadExternalData(decodeModel(readFileSync(path)), join(dir, 'onnx'));
}

/** Self-speculative draft: the target's embedding, first N layers, final norm and head. */
export function deriveDraft(targetDir: string, numLayers: number, out: string, progress: Progress = silent): LlamaConfig {
  assertOutputFree(out);
  const { config, weights } = readForgedWeights(targetDir);
  if (!Number.isInteger(numLayers) || numLayers < 1 || numLayers >= config.numLayers) {
    throw new Error(`--layers must be between 1 and ${config.numLayers - 1} (the target has ${config.numLayers} layers)`);
  }
  const draftConfig = { ...config, numLayers };
  const draftWeights = { ...weights, layers: weights.layers.slice(0, numLayers) };
  writeModelFolder(out, folderFiles(draftConfig, draftWeights, {
    json: readJson(join(targetDir, 'tokenizer.json')), config: readJson(join(targetDir, 'tokenizer_config.json')),
  }, progress));
  return draftConfig;
}

export function quantizeFolder(dir: string, dtype: string, progress: Progress = silent): string {
  if (dtype !== 'fp16' && dtype !== 'int8') throw new Error(`unknown --dtype "${dtype}" (expected fp16 or int8)`);
  const target = join(dir, 'onnx', DTYPE_FILES[dtype]);
  if (existsSync(target)) throw new Error(`${target} already exists; remove it first`);
  progress('read', 0, 3);
  const model = readModel(dir, 'fp32');
  progress(dtype, 1, 3);
  const converted = dtype === 'fp16' ? convertToFp16(model) : quantizeToInt8(model);
  progress('write', 2, 3);
  // The side file first: the graph's name is what makes the variant visible.
  const files = Object.entries(modelFiles(converted, DTYPE_FILES[dtype])).reverse();
  for (const [name, contents] of files) addFileAtomically(join(dir, 'onnx', name), contents);
  progress('write', 3, 3);
  return target;
}

export interface WidenOptions extends Partial<WidenShape> {
  preset?: string;
  /** The llama2.c tokenizer (tok*.bin) when the source is a llama2.c checkpoint. */
  tokenizer?: string;
  /** Variants to write (default fp32). */
  dtypes?: ForgeDtype[];
}

/** A widened copy (forge/widen.ts) of a llama2.c checkpoint or a folder this forge wrote. */
export function widenModel(source: string, out: string, o: WidenOptions, progress: Progress = silent): LlamaConfig {
  assertOutputFree(out);
  const preset = o.preset === undefined ? undefined : widenPresets[o.preset];
  if (o.preset !== undefined && !preset) throw new Error(`unknown preset "${o.preset}" (known: ${Object.keys(widenPresets).join(', ')})`);
  const shape = { ...preset, ...Object.fromEntries(Object.entries({ hiddenSize: o.hiddenSize, intermediateSize: o.intermediateSize,
    numLayers: o.numLayers }).filter(([, v]) => v !== undefined)) } as Partial<WidenShape>;
  let src: { config: LlamaConfig; weights: LlamaWeights };
  let tokenizer: { json: Record<string, unknown>; config: Record<string, unknown> };
  if (existsSync(join(source, 'config.json'))) {
    src = readForgedWeights(source);
    tokenizer = { json: readJson(join(source, 'tokenizer.json')), config: readJson(join(source, 'tokenizer_config.json')) };
  } else {
    if (!o.tokenizer) throw new Error(`${source} is not a model folder; for a llama2.c checkpoint give --tokenizer TOK.bin`);
    const checkpoint = readLlama2cCheckpoint(readFileSync(source));
    src = checkpoint;
    tokenizer = vocabTokenizer(readLlama2cTokenizer(readFileSync(o.tokenizer), checkpoint.config.vocabSize), checkpoint.config.maxPositionEmbeddings);
  }
  const to: WidenShape = {
    hiddenSize: shape.hiddenSize ?? src.config.hiddenSize,
    intermediateSize: shape.intermediateSize ?? src.config.intermediateSize,
    numLayers: shape.numLayers ?? src.config.numLayers,
  };
  const { config, weights } = widenWeights(src.config, src.weights, to);
  writeModelFolder(out, folderFiles(config, weights, tokenizer, progress, o.dtypes ?? ['fp32']));
  return config;
}
