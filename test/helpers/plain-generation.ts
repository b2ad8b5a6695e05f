// Plain generation with the target alone (the oracle the engine's outputs are held against): one prefill pass over the prompt, then one decode pass per token.
// Hooks report prefill time and per-token decode time separately (the metrics layer uses them).
import type { Decoder } from '../../src/runtime/decoder.ts';
import type { TextTokenizer } from '../../src/runtime/tokenizer.ts';
import { GenerationOutput, type FinishReason } from '../../src/runtime/generation-output.ts';
import { sampleToken, type SamplingParams } from '../../src/runtime/sampling.ts';
import { Xoshiro128 } from '../../src/runtime/rng.ts';

export interface GenerationHooks {
  onPrefill?(seconds: number, numTokens: number): void;
  onDecode?(seconds: number): void;
  onToken?(id: number, text: string): void;
}

export interface GenerateOptions {
  maxTokens: number;
  sampling: SamplingParams;
  seed?: number;
  stop?: string[];
  hooks?: GenerationHooks;
}

export interface GenerationResult {
  tokens: number[];
  text: string;
  finishReason: FinishReason;
}

export async function generate(decoder: Decoder, tokenizer: TextTokenizer, promptIds: number[], o: GenerateOptions): Promise<GenerationResult> {
  if (promptIds.length === 0) throw new Error('generate: empty prompt');
  const rng = new Xoshiro128(o.seed);
  // Prompt and output together fit the context window (as the engine bounds them).
  const maxTokens = Math.min(o.maxTokens, decoder.folder.maxPositions - promptIds.length);
  if (maxTokens < 1) throw new Error(`generate: a prompt of ${promptIds.length} tokens leaves no room in the context window of ${decoder.folder.maxPositions}`);
  const output = new GenerationOutput(tokenizer, promptIds, { maxTokens, stop: o.stop ?? [], eosTokenIds: decoder.folder.eosTokenIds });
  const cache = decoder.newCache();
  try {
    let input = promptIds;
    let prefill = true;
    while (!output.done) {
      const started = performance.now();
      const [logits] = await decoder.forward([{ cache, tokens: input }]);
      const seconds = (performance.now() - started) / 1000;
      if (prefill) o.hooks?.onPrefill?.(seconds, input.length);
      else o.hooks?.onDecode?.(seconds);
      prefill = false;
      const id = sampleToken(logits[logits.length - 1], o.sampling, rng);
      const text = output.push(id);
      o.hooks?.onToken?.(id, text);
      input = [id];
    }
    return { tokens: output.tokens, text: output.text, finishReason: output.finishReason ?? 'length' };
  } finally {
    cache.clear();
  }
}
