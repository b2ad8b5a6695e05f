// Chat prompts through a model's own Jinja template (tokenizer_config.json chat_template), and the fallback.
import { describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { TextTokenizer } from '../../../src/runtime/tokenizer.ts';
import { chatRenderer } from '../../../src/server/chat-template.ts';
import { tinyModel } from '../../helpers/model-fixtures.ts';
import { requireSharedModels, SHARED_MODELS } from '../../helpers/shared-models.ts';

const llama = join(SHARED_MODELS, 'random-fixtures/ortgenai-tiny-random-LlamaForCausalLM-fp16');
requireSharedModels('chat templates of a real export');

describe('chat templates', () => {
  it("renders the Llama 2 template shipped in a real tokenizer_config.json", () => {
    const logs: string[] = [];
    const render = chatRenderer(TextTokenizer.load(llama), (m) => logs.push(m));
    expect(render([{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Hi there' }]))
      .toBe('<s>[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nHi there [/INST]');
    expect(logs).toEqual([]);
    expect(() => render([{ role: 'assistant', content: 'x' }])).toThrow(/alternate/);
  });

  it('falls back to a plain template, and says so in the log', () => {
    const logs: string[] = [];
    const render = chatRenderer(TextTokenizer.load(tinyModel()), (m) => logs.push(m));
    expect(render([{ role: 'user', content: 'Hello' }])).toBe('<s>User: Hello\nAssistant:');
    expect(logs[0]).toMatch(/no chat_template.*fallback/);
  });
});
