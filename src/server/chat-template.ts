// Chat prompts from the model's own template (tokenizer_config.json `chat_template`, Jinja, rendered by
// @huggingface/jinja as transformers' apply_chat_template does), or a plain fallback for models without one.
import { Template } from '@huggingface/jinja';
import type { TextTokenizer } from '../runtime/tokenizer.ts';
import type { ChatMessage } from './served-model.ts';

// Used when a model ships no template (base models such as the tinyllamas): role-prefixed lines, then the
// assistant's turn.
export const FALLBACK_CHAT_TEMPLATE =
  "{{ bos_token }}{% for message in messages %}{{ message['role'] | capitalize }}: {{ message['content'] }}\n{% endfor %}" +
  '{% if add_generation_prompt %}Assistant:{% endif %}';

export function chatRenderer(tokenizer: TextTokenizer, log: (m: string) => void): (messages: ChatMessage[]) => string {
  const source = tokenizer.chatTemplate;
  if (!source) log('model has no chat_template in tokenizer_config.json: chat uses a plain "Role: content" fallback template');
  const template = new Template(source ?? FALLBACK_CHAT_TEMPLATE);
  const bos = tokenizer.tokenString('bos_token') ?? '';
  const eos = tokenizer.tokenString('eos_token') ?? '';
  return (messages) => template.render({ messages, bos_token: bos, eos_token: eos, add_generation_prompt: true });
}
