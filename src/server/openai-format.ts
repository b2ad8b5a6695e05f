// OpenAI wire format <-> the engine's GenerationRequest: parameter checks shared by completions and chat, and
// the logprobs objects. Pure functions; the routes do the I/O.
import { MIN_TEMPERATURE, type SamplingParams } from '../runtime/sampling.ts';
import { hasPenalties, type LogitPenalties } from '../runtime/logit-penalties.ts';
import type { TextTokenizer } from '../runtime/tokenizer.ts';
import type { GeneratedTokenLogprob, GrammarSpec, SequenceStats } from '../speculative/generation-request.ts';
import type { EngineHandle } from '../speculative/engine.ts';
import { checkGrammarSpec, GrammarBusyError, GrammarError } from '../runtime/structured/grammar-spec.ts';
import { ApiError, badRequest, errors } from './errors.ts';
import type { ServerConfig } from './config.ts';
import type { ServedModel } from './served-model.ts';
import type { CommonBody } from './schemas.ts';

export type { CommonBody } from './schemas.ts';

/** The request's structured output: response_format or one of vLLM's guided_* fields (at most one), shaped as the
 * engine's GrammarSpec. Whether the grammar compiles is the engine's answer (prepareGrammar). */
export function grammarFrom(body: CommonBody): { spec: GrammarSpec; param: string } | undefined {
  const given: { spec: GrammarSpec; param: string }[] = [];
  const format = body.response_format;
  if (format?.type === 'json_schema') given.push({ param: 'response_format', spec: { type: 'json', schema: format.json_schema.schema ?? { type: 'object' } } });
  else if (format?.type === 'json_object') given.push({ param: 'response_format', spec: { type: 'json' } });
  else if (format?.type === 'structural_tag') given.push({ param: 'response_format', spec: { type: 'structural_tag', tag: structuralTag(format) } });
  if (body.guided_json !== undefined && body.guided_json !== null) {
    given.push({ param: 'guided_json', spec: { type: 'json', schema: jsonField(body.guided_json, 'guided_json') } });
  }
  if (typeof body.guided_regex === 'string') given.push({ param: 'guided_regex', spec: { type: 'regex', pattern: body.guided_regex } });
  if (body.guided_choice) given.push({ param: 'guided_choice', spec: { type: 'choice', choices: [...body.guided_choice] } });
  if (typeof body.guided_grammar === 'string') given.push({ param: 'guided_grammar', spec: { type: 'grammar', ebnf: body.guided_grammar } });
  if (body.structural_tag !== undefined && body.structural_tag !== null) {
    given.push({ param: 'structural_tag', spec: { type: 'structural_tag', tag: jsonField(body.structural_tag, 'structural_tag') } });
  }
  if (given.length > 1) {
    throw badRequest(`${given.map((g) => g.param).join(' and ')} each constrain the output; give at most one`, given[1].param);
  }
  const [grammar] = given;
  if (!grammar) return undefined;
  try {
    checkGrammarSpec(grammar.spec);
  } catch (err) {
    if (err instanceof GrammarError) throw badRequest(`${grammar.param}: ${err.message}`, grammar.param);
    throw err;
  }
  return grammar;
}

/** A JSON field given as a value or as its JSON text (vLLM takes both). */
function jsonField(value: unknown, param: string): unknown {
  if (typeof value !== 'string') return value;
  try {
    return JSON.parse(value);
  } catch {
    throw badRequest(`${param} is not valid JSON`, param);
  }
}

/** response_format structural_tag: XGrammar's form ({ format }) as it is, vLLM's older one ({ structures, triggers })
 * as the triggered tags it means. */
function structuralTag(format: { format?: unknown; structures?: { begin: string; schema?: unknown; end: string }[]; triggers?: string[] }): unknown {
  if (format.format !== undefined) return { type: 'structural_tag', format: format.format };
  return {
    type: 'structural_tag',
    format: {
      type: 'triggered_tags', triggers: format.triggers ?? [],
      tags: (format.structures ?? []).map((s) => ({ type: 'tag', begin: s.begin, content: { type: 'json_schema', json_schema: s.schema ?? {} }, end: s.end })),
    },
  };
}

/** Compiles the request's grammar before the request is queued (in the engine's grammar workers), so that a grammar
 * XGrammar refuses gets a 400 with XGrammar's reason, before any streamed byte. */
export async function prepareGrammar(engine: EngineHandle, grammar: { spec: GrammarSpec; param: string } | undefined): Promise<GrammarSpec | undefined> {
  if (!grammar) return undefined;
  try {
    await engine.prepareConstraint(grammar.spec);
  } catch (err) {
    if (err instanceof GrammarError) throw badRequest(`${grammar.param}: ${err.message}`, grammar.param);
    if (err instanceof GrammarBusyError) throw errors.grammarsBusy(err.message);
    throw err;
  }
  return grammar.spec;
}

/** What both generation routes take from a body the same way, after checking the model and unsupported fields. */
export function commonParameters(body: CommonBody & { best_of?: number | null; suffix?: string | null }, model: ServedModel, config: ServerConfig) {
  checkModel(body, model);
  checkUnsupported(body);
  return {
    n: choicesPerPrompt(body, config),
    stop: stopList(body, config),
    sampling: samplingFrom(body),
    penalties: penaltiesFrom(body, model.vocabSize),
    grammar: grammarFrom(body),
    numSpeculativeTokens: speculativeTokens(body, config.numSpeculativeTokens),
    /** Choice j of a prompt gets seed + j: reproducible, yet different choices. */
    seedFor: (j: number) => {
      if (body.seed === undefined || body.seed === null) return undefined;
      return body.seed + j <= Number.MAX_SAFE_INTEGER ? body.seed + j : body.seed - j; // still distinct, still safe
    },
  };
}

/** `model`, where given, must name the served model (absent: the one this server serves, as vLLM and llama.cpp do). */
export function checkModel(body: { model?: string }, model: ServedModel): void {
  if (body.model !== undefined && body.model !== model.name) {
    throw new ApiError('model_not_found', `The model \`${body.model}\` does not exist. This server serves \`${model.name}\`.`, 'model');
  }
}

export function checkUnsupported(body: CommonBody & { best_of?: number | null; suffix?: string | null }): void {
  const unsupported = (param: string, why: string) => new ApiError('unsupported_parameter', `${param} is not supported: ${why}`, param);
  if (body.best_of !== undefined && body.best_of !== null && body.best_of > 1) throw unsupported('best_of', 'only 1 is accepted');
  if (body.suffix) throw unsupported('suffix', 'insertion is not available for these models');
}

/** logit_bias and the penalties, with bias token ids checked against the vocabulary; undefined where all are off. */
export function penaltiesFrom(body: CommonBody, vocabSize: number): LogitPenalties | undefined {
  const logitBias = Object.entries(body.logit_bias ?? {}).map(([id, bias]) => [Number(id), bias as number] as [number, number]);
  const outside = logitBias.find(([id]) => id >= vocabSize);
  if (outside) throw badRequest(`logit_bias names token ${outside[0]}, outside the vocabulary of ${vocabSize} tokens`, 'logit_bias');
  const penalties = { logitBias, presence: body.presence_penalty ?? 0, frequency: body.frequency_penalty ?? 0, repetition: body.repetition_penalty ?? 1 };
  return hasPenalties(penalties) ? penalties : undefined;
}

export function samplingFrom(body: CommonBody): SamplingParams {
  const temperature = body.temperature ?? 1;
  return {
    // Below MIN_TEMPERATURE greedy, as vLLM does (a subnormal temperature would turn the softmax into NaN).
    temperature: temperature < MIN_TEMPERATURE ? 0 : temperature,
    topP: body.top_p ?? 1,
    topK: body.top_k && body.top_k > 0 ? body.top_k : 0,
    minP: body.min_p ?? 0,
  };
}

export function stopList(body: CommonBody, config: ServerConfig): string[] {
  const stop = body.stop === undefined || body.stop === null ? [] : typeof body.stop === 'string' ? [body.stop] : body.stop;
  if (stop.length > config.maxStop) throw badRequest(`stop has ${stop.length} strings; at most ${config.maxStop} are allowed`, 'stop');
  if (stop.some((s) => s.length === 0)) throw badRequest('stop strings must not be empty', 'stop');
  return stop;
}

export function choicesPerPrompt(body: CommonBody, config: ServerConfig): number {
  const n = body.n ?? 1;
  if (n > config.maxN) throw badRequest(`n must be at most ${config.maxN}, got ${n}`, 'n');
  return n;
}

/** The request's draft length: undefined for the server's choice, 0 for none, or K, at most the server's maximum (the
 * draft graphs for every K up to it are built at start-up; a larger K would build them on the request path). */
export function speculativeTokens(body: CommonBody, max: number): number | undefined {
  if (body.speculative === undefined || body.speculative === true) return undefined;
  if (body.speculative === false) return 0;
  const k = body.speculative.num_tokens;
  if (k === undefined) return undefined;
  if (k > max) throw badRequest(`'speculative.num_tokens' must be at most ${max} (the server's --num-speculative-tokens), got ${k}`, 'speculative');
  return k;
}

/** max_tokens within the context window (vLLM's message), defaulting to `fallback` or the room left. */
export function resolveMaxTokens(requested: number | null | undefined, fallback: number | undefined, promptTokens: number,
  model: ServedModel, config: ServerConfig, param = 'max_tokens'): number {
  const room = model.maxModelLen - promptTokens;
  const limit = config.maxPromptTokens ?? model.maxModelLen - 1;
  if (promptTokens > limit || room < 1) {
    throw new ApiError('context_length_exceeded', `This model's maximum context length is ${model.maxModelLen} tokens. ` +
      `However, your prompt has ${promptTokens} tokens` + (promptTokens > limit && room >= 1 ? ` (the limit for prompts is ${limit})` : '') +
      '. Please reduce the length of the prompt.', 'prompt');
  }
  const maxTokens = requested ?? Math.min(fallback ?? room, room);
  if (config.maxTokensPerRequest !== undefined && maxTokens > config.maxTokensPerRequest) {
    throw badRequest(`${param} must be at most ${config.maxTokensPerRequest}, got ${maxTokens}`, param);
  }
  if (maxTokens > room) {
    throw new ApiError('context_length_exceeded', `This model's maximum context length is ${model.maxModelLen} tokens. ` +
      `However, you requested ${promptTokens + maxTokens} tokens (${promptTokens} in the prompt, ${maxTokens} in the completion). ` +
      `Please reduce the length of the prompt or ${param}.`, param);
  }
  return maxTokens;
}

export function checkTokenIds(ids: number[], vocabSize: number, param: string): void {
  const bad = ids.find((id) => !Number.isInteger(id) || id < 0 || id >= vocabSize);
  if (bad !== undefined) throw badRequest(`token id ${bad} is outside the vocabulary [0, ${vocabSize})`, param);
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** A token as OpenAI's logprobs show it: the text its bytes make (byte-fallback and byte-level pieces decoded, a
 * SentencePiece space mark as a space), or, where its bytes are part of a character, `bytes:\xNN...`; and those
 * bytes. Special tokens (no bytes in the text) show their piece. */
export function tokenEntry(tokenizer: TextTokenizer, id: number): { token: string; bytes: number[] } {
  const raw = tokenizer.tokenBytes()[id];
  if (!raw) {
    const piece = tokenizer.idToToken(id) ?? '';
    return { token: piece, bytes: Array.from(Buffer.from(piece, 'utf8')) };
  }
  let token: string;
  try {
    token = utf8.decode(raw);
  } catch {
    token = `bytes:${Array.from(raw, (b) => `\\x${b.toString(16).padStart(2, '0')}`).join('')}`;
  }
  return { token, bytes: Array.from(raw) };
}

/** Completions logprobs for tokens whose text starts at `start` of the choice's text: offsets count the characters
 * their bytes complete (a token inside a character adds none until it ends), clamped to `textLength` characters where
 * the returned text is shorter (a stop string cut it). */
export function completionLogprobs(tokenizer: TextTokenizer, logprobs: GeneratedTokenLogprob[], start: number, textLength = Infinity) {
  const bytes = tokenizer.tokenBytes();
  const decoder = new TextDecoder('utf-8');
  const offsets: number[] = [];
  let offset = start;
  for (const l of logprobs) {
    offsets.push(Math.min(offset, start + textLength));
    const b = bytes[l.id];
    if (b) offset += decoder.decode(b, { stream: true }).length;
  }
  return {
    tokens: logprobs.map((l) => tokenEntry(tokenizer, l.id).token),
    token_logprobs: logprobs.map((l) => l.logprob),
    top_logprobs: logprobs.map((l) => Object.fromEntries(l.top.map((t) => [tokenEntry(tokenizer, t.id).token, t.logprob]))),
    text_offset: offsets,
  };
}

export function chatLogprobs(tokenizer: TextTokenizer, logprobs: GeneratedTokenLogprob[]) {
  const entry = (id: number, logprob: number) => ({ ...tokenEntry(tokenizer, id), logprob });
  return {
    content: logprobs.map((l) => ({ ...entry(l.id, l.logprob), top_logprobs: l.top.map((t) => entry(t.id, t.logprob)) })),
    // OpenAI's schema requires it beside content: the logprobs of a refusal, which a model here never writes.
    refusal: null,
  };
}

/** usage for a request whose prompts total `promptTokens`, from its choices' outcomes. accepted / rejected
 * prediction tokens keep OpenAI's meaning: tokens of the *prediction* that did or did not appear in the completion
 * (0 without a prediction); every proposer's draft figures go in the `speculative_decoding` extension. */
export function usageFor(promptTokens: number,
  outcomes: { index: number; tokens: number[]; stats: Pick<SequenceStats, 'numDrafted' | 'numAccepted' | 'numPredictionTokens' | 'numPredictionAccepted' | 'numCachedTokens'> }[],
  choicesPerPrompt = 1) {
  const accepted = outcomes.reduce((a, o) => a + o.stats.numPredictionAccepted, 0);
  const completionTokens = outcomes.reduce((a, o) => a + o.tokens.length, 0);
  return {
    prompt_tokens: promptTokens,
    completion_tokens: completionTokens,
    total_tokens: promptTokens + completionTokens,
    // Each prompt's reused tokens once (its first choice's: the others of a request start together, uncached).
    prompt_tokens_details: { cached_tokens: outcomes.filter((o) => o.index % choicesPerPrompt === 0).reduce((a, o) => a + o.stats.numCachedTokens, 0) },
    completion_tokens_details: {
      accepted_prediction_tokens: accepted,
      rejected_prediction_tokens: outcomes.reduce((a, o) => a + o.stats.numPredictionTokens, 0) - accepted,
    },
    speculative_decoding: {
      draft_tokens: outcomes.reduce((a, o) => a + o.stats.numDrafted, 0),
      accepted_draft_tokens: outcomes.reduce((a, o) => a + o.stats.numAccepted, 0),
    },
  };
}
