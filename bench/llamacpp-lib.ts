// llama.cpp (node-llama-cpp) for the side-by-side benches: a model's context with, optionally, stories260K's distilled
// draft proposing up to 4 tokens, and greedy completions of prompts one after another, tokens per second.
import { join } from 'node:path';
import { loadLlamaCpp, type Llama } from './peer-engines.ts';
import { SHARED } from './lib.ts';

/**
 * Greedy completions of `prompts` (each from a clear history) on `modelPath` with `threads` threads, the draft where
 * asked; returns tokens per second and the texts. Model and contexts are disposed before it returns, so that
 * llama.cpp's threads do not compete with the rows after it.
 */
export async function llamaCppRun(llama: Llama, modelPath: string, o: { threads: number; draft: boolean; prompts: string[]; maxTokens: number }) {
  const { LlamaCompletion, DraftSequenceTokenPredictor } = await loadLlamaCpp();
  const model = await llama.loadModel({ modelPath });
  const context = await model.createContext({ contextSize: 512, threads: o.threads });
  const disposables: { dispose(): Promise<void> }[] = [context, model];
  let tokenPredictor;
  if (o.draft) {
    const draftModel = await llama.loadModel({ modelPath: join(SHARED, 'stories260K-draft/stories260K-draft.gguf') });
    const draftContext = await draftModel.createContext({ contextSize: 512, threads: 1 });
    disposables.unshift(draftContext, draftModel);
    tokenPredictor = new DraftSequenceTokenPredictor(draftContext.getSequence(), { maxTokens: 4 });
  }
  const sequence = context.getSequence({ tokenPredictor });
  const completion = new LlamaCompletion({ contextSequence: sequence });
  let tokens = 0;
  const texts: string[] = [];
  const started = performance.now();
  for (const prompt of o.prompts) {
    await sequence.clearHistory();
    texts.push(await completion.generateCompletion(prompt, { maxTokens: o.maxTokens, temperature: 0, repeatPenalty: false, onToken: (t) => (tokens += t.length) }));
  }
  const tps = tokens / ((performance.now() - started) / 1000);
  for (const d of disposables) await d.dispose();
  return { tps, texts };
}
