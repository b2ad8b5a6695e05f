// POST /v1/completions (OpenAI legacy completions), plain and streamed.
import { randomUUID } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import type { GenerationRequest } from '../speculative/generation-request.ts';
import { completionBodySchema, type CompletionBody } from './schemas.ts';
import { generationResponse, modelRouteErrors } from './response-schemas.ts';
import { ApiError, badRequest } from './errors.ts';
import { checkTokenIds, commonParameters, completionLogprobs, prepareGrammar, resolveMaxTokens, usageFor } from './openai-format.ts';
import { GenerationRun, type ChoiceOutcome } from './generation-run.ts';
import { onClientGone } from './sse.ts';
import { streamRun } from './stream-run.ts';
import type { RouteDeps } from './route-deps.ts';

// OpenAI's default for the legacy completions endpoint.
const DEFAULT_MAX_TOKENS = 16;

function promptList(prompt: CompletionBody['prompt']): (string | number[])[] {
  if (typeof prompt === 'string') return [prompt];
  if (prompt.length > 0 && typeof prompt[0] === 'number') return [prompt as number[]];
  return prompt as (string | number[])[];
}

export function registerCompletions(app: FastifyInstance, deps: RouteDeps): void {
  app.post('/v1/completions', {
    schema: {
      summary: 'Create a completion', operationId: 'createCompletion', tags: ['OpenAI'], body: completionBodySchema,
      response: { 200: generationResponse('CreateCompletionResponse', 'CompletionChunk', 'The completion'), ...modelRouteErrors },
    },
  }, async (req, reply) => {
    const model = deps.model();
    const body = req.body as CompletionBody;
    const { n, stop, sampling, penalties, grammar, numSpeculativeTokens, seedFor } = commonParameters(body, model, deps.config);
    if (body.echo && body.logprobs !== undefined && body.logprobs !== null) {
      throw new ApiError('unsupported_parameter', 'echo together with logprobs is not supported (prompt logprobs are not computed)', 'echo');
    }
    const prompts = promptList(body.prompt);
    if (prompts.length > deps.config.maxPrompts) {
      throw badRequest(`prompt has ${prompts.length} prompts; at most ${deps.config.maxPrompts} are allowed per request`, 'prompt');
    }
    const encoded = prompts.map((p) => {
      if (p === '') throw badRequest('prompt must not be empty', 'prompt');
      const ids = typeof p === 'string' ? model.tokenizer.encode(p) : p;
      if (typeof p !== 'string') checkTokenIds(ids, model.vocabSize, 'prompt');
      if (ids.length === 0) throw badRequest('prompt is empty', 'prompt');
      return { ids, text: typeof p === 'string' ? p : model.tokenizer.decode(p) };
    });
    const constraint = await prepareGrammar(model.engine, grammar);
    const requests: GenerationRequest[] = encoded.flatMap(({ ids }) => {
      const maxTokens = resolveMaxTokens(body.max_tokens, DEFAULT_MAX_TOKENS, ids.length, model, deps.config);
      return Array.from({ length: n }, (_, j) => ({
        promptIds: ids, maxTokens, sampling, penalties, stop, seed: seedFor(j), numSpeculativeTokens, constraint, logprobs: body.logprobs ?? undefined, ignoreEos: body.ignore_eos,
      }));
    });
    const id = `cmpl-${randomUUID()}`;
    const created = Math.floor(Date.now() / 1000);
    const promptOf = (index: number) => encoded[Math.floor(index / n)];
    const usage = (outcomes: ChoiceOutcome[]) => usageFor(encoded.reduce((a, e) => a + e.ids.length, 0), outcomes, n);
    const base = { id, object: 'text_completion', created, model: model.name };

    const echoOf = (index: number) => (body.echo ? promptOf(index).text : '');
    const wantsLogprobs = body.logprobs !== undefined && body.logprobs !== null;

    if (body.stream) {
      const offsets = requests.map((_, i) => echoOf(i).length);
      const chunk = (index: number, text: string, logprobs: unknown, finishReason: string | null) =>
        ({ ...base, choices: [{ index, text, logprobs, finish_reason: finishReason }] });
      return streamRun(reply, model.engine, requests, deps.config.streamBufferBytes, {
        opening: requests.flatMap((_, i) => (echoOf(i) ? [chunk(i, echoOf(i), null, null)] : [])),
        token: (index, event) => {
          const lp = event.logprobs && wantsLogprobs ? completionLogprobs(model.tokenizer, event.logprobs, offsets[index], event.text.length) : null;
          offsets[index] += event.text.length;
          return event.text || lp ? chunk(index, event.text, lp, null) : null;
        },
        finish: (o) => chunk(o.index, '', null, o.finishReason),
        usage: (outcomes) => (body.stream_options?.include_usage ? { ...base, choices: [], usage: usage(outcomes) } : null),
      });
    }

    const run = new GenerationRun(model.engine, requests);
    onClientGone(reply, () => run.cancel());
    const outcomes = await run.done;
    return {
      ...base,
      choices: outcomes.map((o) => {
        const echo = echoOf(o.index);
        return {
          index: o.index,
          text: echo + o.text,
          logprobs: wantsLogprobs ? completionLogprobs(model.tokenizer, o.logprobs, echo.length, o.text.length) : null,
          finish_reason: o.finishReason,
        };
      }),
      usage: usage(outcomes),
    };
  });
}
