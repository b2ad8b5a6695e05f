// Reading tool calls out of text, per parser; picking the parser from a chat template; the wrappers of required calls.
import { describe, expect, it } from 'vitest';
import { callId, parseToolCalls, parserFor, requiredCallsGrammar } from '../../../src/server/tool-calls.ts';
import { wrapEbnf } from '../../../src/runtime/structured/grammar-spec.ts';

const tools = [{ name: 'weather' }, { name: 'time' }];

describe('tool calls', () => {
  it('hermes: each <tool_call> block, the text around it as content; unknown functions and bad JSON stay text', () => {
    const text = 'Sure. <tool_call>\n{"name": "weather", "arguments": {"city": "Paris"}}\n</tool_call>\n<tool_call>{"name":"time","arguments":{}}</tool_call>';
    expect(parseToolCalls(text, 'hermes', tools)).toEqual({
      content: 'Sure.', calls: [{ name: 'weather', arguments: '{"city":"Paris"}' }, { name: 'time', arguments: '{}' }],
    });
    expect(parseToolCalls('<tool_call>{"name": "weather", "arguments": {}}</tool_call>', 'hermes', tools).content).toBeNull();
    for (const bad of ['<tool_call>{"name": "nope", "arguments": {}}</tool_call>', '<tool_call>{"name": "weather"</tool_call>', 'no calls']) {
      expect(parseToolCalls(bad, 'hermes', tools)).toEqual({ content: bad, calls: [] });
    }
  });

  it('llama3_json: one JSON object (or several joined by ;) with "parameters", after an optional <|python_tag|>', () => {
    expect(parseToolCalls('<|python_tag|>{"name": "weather", "parameters": {"city": "Oslo"}}', 'llama3_json', tools))
      .toEqual({ content: null, calls: [{ name: 'weather', arguments: '{"city":"Oslo"}' }] });
    expect(parseToolCalls('{"name": "weather", "parameters": {}}; {"name": "time", "parameters": {"zone": 1}}', 'llama3_json', tools).calls.map((c) => c.name))
      .toEqual(['weather', 'time']);
    expect(parseToolCalls('The weather is fine.', 'llama3_json', tools)).toEqual({ content: 'The weather is fine.', calls: [] });
  });

  it('mistral: [TOOL_CALLS] and a JSON array', () => {
    expect(parseToolCalls('[TOOL_CALLS] [{"name": "time", "arguments": {"zone": -3}}]', 'mistral', tools))
      .toEqual({ content: null, calls: [{ name: 'time', arguments: '{"zone":-3}' }] });
  });

  it('picks the parser from the template, Hermes where it names none', () => {
    expect(parserFor('{{ "[TOOL_CALLS]" }}')).toBe('mistral');
    expect(parserFor("{% if message.role == 'ipython' %}<|python_tag|>{% endif %}")).toBe('llama3_json');
    expect(parserFor('<tool_call>')).toBe('hermes');
    expect(parserFor(undefined)).toBe('hermes');
    expect(callId()).toMatch(/^call_[A-Za-z0-9]{24}$/);
  });

  it("required calls: each parser's wrapper around the calls' schema; one or several", () => {
    const fns = [{ name: 'weather', parameters: { type: 'object' } }];
    expect(requiredCallsGrammar(fns, 'hermes', true)).toMatchObject({ type: 'json', wrap: { begin: '<tool_call>\n', end: '\n</tool_call>', separator: '\n' } });
    expect(requiredCallsGrammar(fns, 'hermes', false)).not.toHaveProperty('wrap.separator');
    expect(requiredCallsGrammar(fns, 'llama3_json', false)).toMatchObject({ type: 'json', schema: { required: ['name', 'parameters'] } });
    expect(requiredCallsGrammar(fns, 'mistral', false)).toMatchObject({ wrap: { begin: '[TOOL_CALLS]' }, schema: { type: 'array', maxItems: 1 } });
    expect(wrapEbnf('a ::= "x"\nroot ::= a', { begin: '<t>', end: '</t>', separator: ',' }))
      .toBe('a ::= "x"\nwrapped_document ::= a\nroot ::= "<t>" wrapped_document "</t>" ("," "<t>" wrapped_document "</t>")*\n');
  });
});
