// What the HTTP layer needs of the loaded models.
import type { EngineHandle } from '../speculative/engine.ts';
import type { TextTokenizer } from '../runtime/tokenizer.ts';

export interface ChatMessage {
  role: string;
  content: string;
}

export interface ServedModel {
  name: string;
  engine: EngineHandle;
  tokenizer: TextTokenizer;
  maxModelLen: number;
  vocabSize: number;
  /** Renders messages into the prompt text (the model's chat template, or the plain fallback). */
  renderChat(messages: ChatMessage[]): string;
  /** Unix seconds, for /v1/models. */
  created: number;
  description: { dtype: string; device: string; draft: string };
}
