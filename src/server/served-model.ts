// What the HTTP layer needs of the loaded models.
import type { EngineHandle } from '../speculative/engine.ts';
import type { TextTokenizer } from '../runtime/tokenizer.ts';

export interface ChatMessage {
  role: string;
  content: string;
  /** An assistant turn's calls (arguments as JSON text). */
  tool_calls?: { id: string; type: 'function'; function: { name: string; arguments: string } }[];
  tool_call_id?: string;
}

export interface ServedModel {
  name: string;
  engine: EngineHandle;
  tokenizer: TextTokenizer;
  maxModelLen: number;
  vocabSize: number;
  /** Renders messages into the prompt text (the model's chat template, or the plain fallback). */
  renderChat(messages: ChatMessage[], tools?: unknown[]): string;
  /** The model's chat template source (its tool-call format picks the parser); absent: the fallback. */
  chatTemplate?: string;
  /** Unix seconds, for /v1/models. */
  created: number;
  description: { dtype: string; device: string; draft: string };
}
