// Chat prompts from the model's own template (tokenizer_config.json `chat_template`, Jinja, rendered by
// @huggingface/jinja as transformers' apply_chat_template does), or a plain fallback for models without one.
import { Template } from '@huggingface/jinja';
import type { TextTokenizer } from '../runtime/tokenizer.ts';
import type { ChatMessage } from './served-model.ts';

// Used when a model ships no template (base models such as the tinyllamas): role-prefixed lines, then the
// assistant's turn. With tools, a first line lists them and asks for Hermes-style calls (<tool_call>{"name": ...,
// "arguments": ...}</tool_call>), which is how the history's calls are written too.
export const FALLBACK_CHAT_TEMPLATE =
  "{{ bos_token }}{% if tools %}Tools:{{ '\\n' }}{% for tool in tools %}{{ tool.function | tojson }}{{ '\\n' }}{% endfor %}" +
  'To call one: <tool_call>{"name": ..., "arguments": ...}</tool_call>{{ \'\\n\' }}{% endif %}' +
  "{% for message in messages %}{% if message['role'] == 'assistant' and message['tool_calls'] %}Assistant:" +
  '{% for call in message.tool_calls %} <tool_call>{"name": {{ call.function.name | tojson }}, "arguments": {{ call.function.arguments | tojson }}}</tool_call>{% endfor %}{{ \'\\n\' }}' +
  "{% else %}{{ message['role'] | capitalize }}: {{ message['content'] }}\n{% endif %}{% endfor %}" +
  '{% if add_generation_prompt %}Assistant:{% endif %}';

export function chatRenderer(tokenizer: TextTokenizer, log: (m: string) => void): (messages: ChatMessage[], tools?: unknown[]) => string {
  const source = tokenizer.chatTemplate;
  if (!source) log('model has no chat_template in tokenizer_config.json: chat uses a plain "Role: content" fallback template');
  const template = new Template(source ?? FALLBACK_CHAT_TEMPLATE);
  const bos = tokenizer.tokenString('bos_token') ?? '';
  const eos = tokenizer.tokenString('eos_token') ?? '';
  // Templates take a call's arguments as an object (transformers' apply_chat_template does), the wire sends JSON text.
  const forTemplate = (m: ChatMessage) => (m.tool_calls ? { ...m, tool_calls: m.tool_calls.map((c) => ({
    ...c, function: { name: c.function.name, arguments: parsedOr(c.function.arguments) },
  })) } : m);
  return (messages, tools) => template.render({
    messages: messages.map(forTemplate), bos_token: bos, eos_token: eos, add_generation_prompt: true, ...(tools?.length ? { tools } : {}),
  });
}

function parsedOr(json: string): unknown {
  try {
    return JSON.parse(json);
  } catch {
    return json;
  }
}
