// Tool calling: the parsers that read calls out of a model's text (vLLM's --tool-call-parser: hermes, llama3_json,
// mistral; `auto` picks by the chat template), and the grammar that guarantees calls where the request requires one
// (tool_choice "required" or a named function): the parser's wrapper around JSON that validates against the
// function's parameters, as an XGrammar structural tag, masked for drafts and verification alike.
import { randomBytes } from 'node:crypto';
import type { GrammarSpec } from '../speculative/generation-request.ts';

export const TOOL_PARSERS = ['hermes', 'llama3_json', 'mistral'] as const;
export type ToolParser = (typeof TOOL_PARSERS)[number];

export interface ToolFunction {
  name: string;
  description?: string;
  parameters?: Record<string, unknown>;
}

export interface ParsedCall {
  name: string;
  /** The arguments as a JSON string (OpenAI's wire form). */
  arguments: string;
}

/** The parser a chat template was written for: its call markers, else Hermes' <tool_call> (the fallback template's). */
export function parserFor(template: string | undefined): ToolParser {
  if (template?.includes('[TOOL_CALLS]')) return 'mistral';
  if (template?.includes('<|python_tag|>') || template?.includes('ipython')) return 'llama3_json';
  return 'hermes';
}

/** OpenAI's call ids: "call_" and 24 random alphanumerics. */
export function callId(): string {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
  return `call_${[...randomBytes(24)].map((b) => alphabet[b % alphabet.length]).join('')}`;
}

/**
 * The calls in `text` as `parser` writes them, with the text around them (null when only calls were written). Calls
 * to functions not among `tools`, or whose JSON does not parse, are left as text.
 */
export function parseToolCalls(text: string, parser: ToolParser, tools: ToolFunction[]): { content: string | null; calls: ParsedCall[] } {
  const known = new Set(tools.map((t) => t.name));
  const call = (value: unknown, argsKey: 'arguments' | 'parameters' = 'arguments'): ParsedCall | null => {
    if (!value || typeof value !== 'object') return null;
    const v = value as Record<string, unknown>;
    const args = v[argsKey] ?? v.arguments ?? v.parameters ?? {};
    if (typeof v.name !== 'string' || !known.has(v.name)) return null;
    return { name: v.name, arguments: typeof args === 'string' ? args : JSON.stringify(args) };
  };
  const calls: ParsedCall[] = [];
  let content = text;
  switch (parser) {
    case 'hermes':
      content = text.replace(/<tool_call>\s*([\s\S]*?)\s*<\/tool_call>/g, (whole, json: string) => {
        const parsed = call(tryJson(json));
        if (!parsed) return whole;
        calls.push(parsed);
        return '';
      });
      break;
    case 'llama3_json': {
      const body = text.replace(/^\s*<\|python_tag\|>/, '').trim();
      const parts = body.split(/;\s*(?=\{)/).map((p) => call(tryJson(p), 'parameters'));
      if (parts.length > 0 && parts.every((p) => p)) {
        calls.push(...(parts as ParsedCall[]));
        content = '';
      }
      break;
    }
    case 'mistral': {
      const at = text.indexOf('[TOOL_CALLS]');
      if (at < 0) break;
      const list = tryJson(text.slice(at + '[TOOL_CALLS]'.length).trim());
      const parsed = Array.isArray(list) ? list.map((c) => call(c)) : [];
      if (parsed.length > 0 && parsed.every((p) => p)) {
        calls.push(...(parsed as ParsedCall[]));
        content = text.slice(0, at);
      }
    }
  }
  return { content: calls.length === 0 ? text : content.trim() || null, calls };
}

function tryJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** The JSON of one call to `tool`, as `parser` writes it. */
function callSchema(tool: ToolFunction, parser: ToolParser): Record<string, unknown> {
  const argsKey = parser === 'llama3_json' ? 'parameters' : 'arguments';
  return {
    type: 'object', additionalProperties: false, required: ['name', argsKey],
    properties: { name: { const: tool.name }, [argsKey]: tool.parameters ?? { type: 'object' } },
  };
}

/**
 * The grammar of a reply that must call `tools` (one of them, or the named one): `parser`'s wrapper around calls whose
 * arguments validate against the function's parameters; several calls where `parallel`.
 */
export function requiredCallsGrammar(tools: ToolFunction[], parser: ToolParser, parallel: boolean): GrammarSpec {
  const one = tools.length === 1 ? callSchema(tools[0], parser) : { anyOf: tools.map((t) => callSchema(t, parser)) };
  // JSON schemas with wrappers rather than structural tags: the schema path bounds whitespace and digits
  // (grammar-spec.ts tightenJsonEbnf), where a model could otherwise idle until max_tokens.
  switch (parser) {
    case 'hermes':
      return { type: 'json', schema: one, wrap: { begin: '<tool_call>\n', end: '\n</tool_call>', ...(parallel ? { separator: '\n' } : {}) } };
    case 'llama3_json':
      return { type: 'json', schema: one };
    case 'mistral':
      return { type: 'json', schema: { type: 'array', items: one, minItems: 1, ...(parallel ? {} : { maxItems: 1 }) }, wrap: { begin: '[TOOL_CALLS]', end: '' } };
  }
}
