// Tool calling on /v1/chat/completions: what a request's `tools`, `tool_choice` and `parallel_tool_calls` ask for,
// and its choices' calls as OpenAI sends them, whole (message.tool_calls) or streamed (a delta with each call's id,
// type and name, then its arguments).
import { badRequest } from './errors.ts';
import { callId, parseToolCalls, parserFor, requiredCallsGrammar, type ParsedCall, type ToolFunction, type ToolParser } from './tool-calls.ts';
import type { ChatBody } from './schemas.ts';
import type { ChoiceOutcome } from './generation-run.ts';
import type { GrammarSpec } from '../speculative/generation-request.ts';

export interface ToolUse {
  /** The tools, as the chat template takes them (OpenAI's form); empty: none. */
  rendered: unknown[];
  /** The model may call them (tool_choice not "none"): its text is read for calls. */
  calling: boolean;
  tools: ToolFunction[];
  parser: ToolParser;
  /** The grammar that makes the reply a call (tool_choice "required" or a named function). */
  grammar?: { spec: GrammarSpec; param: string };
}

export function toolUse(body: ChatBody, parserFlag: string, template: string | undefined, grammar: { spec: GrammarSpec; param: string } | undefined): ToolUse {
  const tools: ToolFunction[] = (body.tools ?? []).map((t) => t.function as ToolFunction);
  const choice = body.tool_choice ?? (tools.length > 0 ? 'auto' : 'none');
  const parser = parserFlag === 'auto' ? parserFor(template) : (parserFlag as ToolParser);
  const names = new Set(tools.map((t) => t.name));
  if (names.size < tools.length) throw badRequest('tools must have distinct function names', 'tools');
  if (choice !== 'none' && choice !== 'auto' && tools.length === 0) throw badRequest('tool_choice requires tools', 'tool_choice');
  const use: ToolUse = { rendered: body.tools ?? [], calling: tools.length > 0 && choice !== 'none', tools, parser };
  if (choice === 'required' || typeof choice === 'object') {
    const named = typeof choice === 'object' ? choice.function.name : null;
    if (named !== null && !names.has(named)) throw badRequest(`tool_choice names ${named}, which is not among tools`, 'tool_choice');
    if (grammar) throw badRequest(`tool_choice ${named ? 'naming a function' : '"required"'} and ${grammar.param} both constrain the reply; give one`, 'tool_choice');
    const required = named === null ? tools : tools.filter((t) => t.name === named);
    use.grammar = { spec: requiredCallsGrammar(required, parser, named === null && (body.parallel_tool_calls ?? true)), param: 'tools' };
  }
  return use;
}

/** A choice's calls read from its text, with ids; none where the model wrote none. */
export function choiceCalls(use: ToolUse, outcome: ChoiceOutcome): { content: string | null; calls: (ParsedCall & { id: string })[] } {
  if (!use.calling) return { content: outcome.text, calls: [] };
  const { content, calls } = parseToolCalls(outcome.text, use.parser, use.tools);
  return { content, calls: calls.map((c) => ({ ...c, id: callId() })) };
}

/** OpenAI's message.tool_calls. */
export function toolCallsField(calls: (ParsedCall & { id: string })[]) {
  return calls.map((c) => ({ id: c.id, type: 'function' as const, function: { name: c.name, arguments: c.arguments } }));
}

/** A finished choice's finish_reason: "tool_calls" where it called and was not cut short. */
export function finishReasonWith(calls: unknown[], finishReason: string): string {
  return calls.length > 0 && finishReason === 'stop' ? 'tool_calls' : finishReason;
}

/** The streamed deltas of a choice's calls: each call's id, type and name (arguments empty), then its arguments. */
export function callDeltas(calls: (ParsedCall & { id: string })[]): Record<string, unknown>[] {
  return calls.flatMap((c, index) => [
    { tool_calls: [{ index, id: c.id, type: 'function', function: { name: c.name, arguments: '' } }] },
    { tool_calls: [{ index, function: { arguments: c.arguments } }] },
  ]);
}
