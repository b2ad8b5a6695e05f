// Model folders as users download them: Hugging Face / onnx-community (config.json + onnx/model*.onnx) or
// onnxruntime-genai (genai_config.json + the decoder file it names). Files are picked by transformers.js dtype names.
import { existsSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { DTYPE_FILES, DTYPES, isDtype, type Dtype } from '../onnx/dtype-files.ts';

export { DTYPE_FILES, DTYPES, isDtype, type Dtype };

export interface ModelFolder {
  dir: string;
  /** The ONNX decoder file for the requested dtype. */
  modelPath: string;
  dtype: Dtype;
  modelType: string;
  numLayers: number;
  numKvHeads: number;
  headDim: number;
  vocabSize: number;
  maxPositions: number;
  bosTokenId: number | null;
  eosTokenIds: number[];
  layout: 'hf' | 'genai';
}

type Json = Record<string, unknown>;

function readJson(path: string): Json {
  let value: unknown;
  try {
    value = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new Error(`${path}: ${(err as Error).message}`);
  }
  return asObject(value);
}

const asObject = (v: unknown): Json => (v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Json) : {});

const asIds = (v: unknown): number[] => (Array.isArray(v) ? v.filter((x) => typeof x === 'number') : typeof v === 'number' ? [v] : []);

export function openModelFolder(dir: string, dtype: Dtype = 'fp32'): ModelFolder {
  if (!existsSync(dir)) throw new Error(`model folder ${dir} does not exist`);
  if (!isDtype(dtype)) throw new Error(`unknown dtype "${dtype}" (expected one of ${DTYPES.join(', ')})`);
  const hfConfig = join(dir, 'config.json');
  const genaiConfig = join(dir, 'genai_config.json');
  if (existsSync(hfConfig)) {
    const c = readJson(hfConfig);
    const need = (key: string, value: unknown): number => {
      if (typeof value !== 'number') throw new Error(`${hfConfig}: missing numeric "${key}"`);
      return value;
    };
    const heads = need('num_attention_heads', c.num_attention_heads);
    const hidden = need('hidden_size', c.hidden_size);
    const modelPath = join(dir, 'onnx', DTYPE_FILES[dtype]);
    if (!existsSync(modelPath)) {
      throw new Error(`${dir} has no ${dtype} model: ${modelPath} not found (make it with: specserve quantize ${dir} --dtype ${dtype})`);
    }
    const generation = existsSync(join(dir, 'generation_config.json')) ? readJson(join(dir, 'generation_config.json')) : {};
    const eos = asIds(generation.eos_token_id ?? c.eos_token_id);
    return {
      dir, modelPath, dtype, layout: 'hf',
      modelType: String(c.model_type ?? 'unknown'),
      numLayers: need('num_hidden_layers', c.num_hidden_layers),
      numKvHeads: need('num_key_value_heads', c.num_key_value_heads ?? heads),
      headDim: need('head_dim', c.head_dim ?? hidden / heads),
      vocabSize: need('vocab_size', c.vocab_size),
      maxPositions: need('max_position_embeddings', c.max_position_embeddings ?? 2048),
      bosTokenId: asIds(generation.bos_token_id ?? c.bos_token_id)[0] ?? null,
      eosTokenIds: eos,
    };
  }
  if (existsSync(genaiConfig)) {
    const m = asObject(readJson(genaiConfig).model);
    const d = asObject(m.decoder);
    if (dtype !== 'fp32') throw new Error(`${dir} is an onnxruntime-genai folder with a single decoder file; --dtype ${dtype} does not apply`);
    const filename = String(d.filename ?? 'model.onnx');
    if (filename !== basename(filename)) throw new Error(`${genaiConfig}: decoder file "${filename}" must be a file in ${dir}`);
    const modelPath = join(dir, filename);
    if (!existsSync(modelPath)) throw new Error(`${genaiConfig} names decoder ${d.filename}, which is not in ${dir}`);
    return {
      dir, modelPath, dtype, layout: 'genai',
      modelType: String(m.type ?? 'unknown'),
      numLayers: Number(d.num_hidden_layers),
      numKvHeads: Number(d.num_key_value_heads),
      headDim: Number(d.head_size),
      vocabSize: Number(m.vocab_size),
      maxPositions: Number(m.context_length ?? 2048),
      bosTokenId: asIds(m.bos_token_id)[0] ?? null,
      eosTokenIds: asIds(m.eos_token_id),
    };
  }
  throw new Error(`${dir} is not a model folder: neither config.json nor genai_config.json found`);
}
