// POST /v1/chat/completions, plain and streamed, with Predicted Outputs (`prediction`) as a proposer.
import { randomUUID } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import type { GenerationRequest } from '../speculative/generation-request.ts';
import { chatBodySchema, type ChatBody, type MessageContent } from './schemas.ts';
import { generationResponse, modelRouteErrors } from './response-schemas.ts';
import { badRequest } from './errors.ts';
import { chatLogprobs, commonParameters, prepareGrammar, resolveMaxTokens, usageFor } from './openai-format.ts';
import { GenerationRun, type ChoiceOutcome } from './generation-run.ts';
import { onClientGone } from './sse.ts';
import { streamRun } from './stream-run.ts';
import type { RouteDeps } from './route-deps.ts';
import type { ChatMessage, ServedModel } from './served-model.ts';
import { callDeltas, choiceCalls, finishReasonWith, toolCallsField, toolUse } from './chat-tools.ts';

type Content = MessageContent | undefined;

const text = (c: Content): string => (typeof c === 'string' ? c : Array.isArray(c) ? c.map((p) => p.text ?? '').join('') : '');

/** Messages rendered by the model's chat template, as token ids (the template writes its own special tokens). */
export function chatPromptIds(model: ServedModel, messages: ChatBody['messages'], tools?: unknown[]): number[] {
  let promptText: string;
  try {
    promptText = model.renderChat(messages.map((m): ChatMessage => ({
      role: m.role, content: text(m.content), ...(m.tool_calls ? { tool_calls: m.tool_calls } : {}), ...(m.tool_call_id ? { tool_call_id: m.tool_call_id } : {}),
    })), tools);
  } catch (err) {
    throw badRequest(`the chat template rejected these messages: ${(err as Error).message}`, 'messages');
  }
  return model.tokenizer.encode(promptText, false);
}

export function registerChat(app: FastifyInstance, deps: RouteDeps): void {
  app.post('/v1/chat/completions', {
    schema: {
      summary: 'Create a chat completion', operationId: 'createChatCompletion', tags: ['OpenAI'], body: chatBodySchema,
      response: { 200: generationResponse('CreateChatCompletionResponse', 'ChatCompletionChunk', 'The chat completion'), ...modelRouteErrors },
    },
  }, async (req, reply) => {
    const model = deps.model();
    const body = req.body as ChatBody;
    const { n, stop, sampling, penalties, grammar, numSpeculativeTokens, seedFor } = commonParameters(body, model, deps.config);
    if (body.top_logprobs && !body.logprobs) throw badRequest('top_logprobs requires logprobs: true', 'top_logprobs');
    const tools = toolUse(body, deps.config.toolCallParser, model.chatTemplate, grammar);
    const promptIds = chatPromptIds(model, body.messages, tools.rendered);
    if (promptIds.length === 0) throw badRequest('the rendered prompt is empty', 'messages');
    const maxTokens = resolveMaxTokens(body.max_completion_tokens ?? body.max_tokens, undefined, promptIds.length, model, deps.config,
      body.max_completion_tokens ? 'max_completion_tokens' : 'max_tokens');
    const predictionText = body.prediction ? text(body.prediction.content) : '';
    const prediction = predictionText ? model.tokenizer.encode(predictionText, false) : undefined;
    // A prediction longer than the context could never be followed to its end, and following it costs engine time.
    if (prediction && prediction.length > model.maxModelLen) {
      throw badRequest(`'prediction' has ${prediction.length} tokens; at most ${model.maxModelLen} (the context window) are accepted`, 'prediction');
    }
    const constraint = await prepareGrammar(model.engine, tools.grammar ?? grammar);
    const requests: GenerationRequest[] = Array.from({ length: n }, (_, j) => ({
      promptIds, maxTokens, sampling, penalties, stop, seed: seedFor(j), numSpeculativeTokens, constraint, prediction, ignoreEos: body.ignore_eos,
      logprobs: body.logprobs ? body.top_logprobs ?? 0 : undefined,
    }));
    const base = { id: `chatcmpl-${randomUUID()}`, created: Math.floor(Date.now() / 1000), model: model.name };
    const usage = (outcomes: ChoiceOutcome[]) => usageFor(promptIds.length, outcomes, n);

    if (body.stream) {
      const chunkBase = { ...base, object: 'chat.completion.chunk' };
      const chunk = (index: number, delta: Record<string, unknown>, logprobs: unknown, finishReason: string | null) =>
        ({ ...chunkBase, choices: [{ index, delta, logprobs, finish_reason: finishReason }] });
      return streamRun(reply, model.engine, requests, deps.config.streamBufferBytes, {
        opening: requests.map((_, i) => chunk(i, { role: 'assistant', content: '' }, null, null)),
        token: (index, event) => {
          // Where the model may call tools its text is read whole at the end (calls, or the content it was).
          if (tools.calling) return null;
          const lp = event.logprobs && body.logprobs ? chatLogprobs(model.tokenizer, event.logprobs) : null;
          return event.text || lp ? chunk(index, { content: event.text }, lp, null) : null;
        },
        finish: (o) => {
          if (!tools.calling) return chunk(o.index, {}, null, o.finishReason);
          const { content, calls } = choiceCalls(tools, o);
          return [
            ...(content ? [chunk(o.index, { content }, null, null)] : []),
            ...callDeltas(calls).map((delta) => chunk(o.index, delta, null, null)),
            chunk(o.index, {}, null, finishReasonWith(calls, o.finishReason)),
          ];
        },
        usage: (outcomes) => (body.stream_options?.include_usage ? { ...chunkBase, choices: [], usage: usage(outcomes) } : null),
      });
    }

    const run = new GenerationRun(model.engine, requests);
    onClientGone(reply, () => run.cancel());
    const outcomes = await run.done;
    return {
      ...base,
      object: 'chat.completion',
      choices: outcomes.map((o) => {
        const { content, calls } = choiceCalls(tools, o);
        return {
          index: o.index,
          // refusal: null as OpenAI sends it (its schema requires the field); a model here never refuses by itself.
          message: { role: 'assistant', content, refusal: null, ...(calls.length > 0 ? { tool_calls: toolCallsField(calls) } : {}) },
          logprobs: body.logprobs ? chatLogprobs(model.tokenizer, o.logprobs) : null,
          finish_reason: finishReasonWith(calls, o.finishReason),
        };
      }),
      usage: usage(outcomes),
    };
  });
}
