// The engines the side-by-side benches run against ours: llama.cpp (node-llama-cpp) and transformers.js
// (@huggingface/transformers). They live in bench/peers, a package with its own lockfile installed by
// `npm run peers:install`, because they weigh about 0.9 GB and nothing but these benches uses them. They are loaded
// through bench/peers' own files so that Node resolves them from bench/peers/node_modules, and typed here by the
// little the benches use: `npm test` type-checks bench/ on a plain install, where the packages' own types are absent.
import { existsSync } from 'node:fs';

const PEERS = new URL('./peers/', import.meta.url);

export const PEERS_INSTALL = 'npm run peers:install';

async function importPeer<T>(packageName: string, entry: string): Promise<T> {
  if (!existsSync(new URL(`node_modules/${packageName}/package.json`, PEERS))) {
    throw new Error(`${packageName} is not installed: the side-by-side benches take it from bench/peers; run \`${PEERS_INSTALL}\` first`);
  }
  return (await import(new URL(entry, PEERS).href)) as T;
}

/** The part of node-llama-cpp 3.x the benches use. */
export interface LlamaCpp {
  getLlama(options: { gpu: false; logLevel?: 'error' }): Promise<Llama>;
  LlamaCompletion: new (options: { contextSequence: LlamaContextSequence }) => {
    generateCompletion(prompt: string, options: { maxTokens: number; temperature: number; repeatPenalty: false; onToken?: (tokens: number[]) => void }): Promise<string>;
  };
  DraftSequenceTokenPredictor: new (draftSequence: LlamaContextSequence, options: { maxTokens: number }) => TokenPredictor;
}
export interface Llama {
  loadModel(options: { modelPath: string }): Promise<LlamaModel>;
}
interface Disposable {
  dispose(): Promise<void>;
}
interface LlamaModel extends Disposable {
  createContext(options: { contextSize: number; threads: number }): Promise<LlamaContext>;
}
interface LlamaContext extends Disposable {
  getSequence(options?: { tokenPredictor?: TokenPredictor }): LlamaContextSequence;
}
interface LlamaContextSequence {
  clearHistory(): Promise<void>;
}
/** Opaque here: made by DraftSequenceTokenPredictor, handed to getSequence. */
type TokenPredictor = object;

/** The part of @huggingface/transformers 4.x the benches use. */
export interface Transformers {
  env: { allowRemoteModels: boolean; allowLocalModels: boolean; localModelPath: string };
  AutoTokenizer: { from_pretrained(name: string): Promise<(text: string) => TokenizerOutput> };
  AutoModelForCausalLM: {
    from_pretrained(name: string, options: { dtype: 'fp32'; device: 'cpu'; session_options: { intraOpNumThreads: number; interOpNumThreads: number } }): Promise<{
      generate(options: TokenizerOutput & { max_new_tokens: number; do_sample: false; repetition_penalty: number }): Promise<unknown>;
    }>;
  };
}
interface TokenizerOutput {
  input_ids: { dims: number[] };
}

export const loadLlamaCpp = () => importPeer<LlamaCpp>('node-llama-cpp', 'llama-cpp.js');
export const loadTransformers = () => importPeer<Transformers>('@huggingface/transformers', 'transformers.js');
