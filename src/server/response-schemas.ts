// JSON Schemas of every response body, published as the OpenAPI document's components (app.addSchema; a route refers
// to one as { $ref: 'Name#' }). They describe and do not serialize: app.ts keeps JSON.stringify as the serializer, so
// a field missing here cannot vanish from the wire, and test/integration/server/openapi-document.test.ts holds real
// responses to these schemas (additionalProperties: false, so an undocumented field fails it). Names follow OpenAI's
// document (github.com/openai/openai-openapi) where the object is OpenAI's.
import { errorCatalog } from './errors.ts';

const integer = { type: 'integer' } as const;
const string = { type: 'string' } as const;
const created = { type: 'integer', description: 'Unix time (seconds) of the request.' } as const;
const finishReason = { enum: ['stop', 'length'], description: 'stop: an end-of-sequence token or a stop string; length: max_tokens or the context window.' } as const;
const ref = (name: string) => ({ $ref: `${name}#` });
const nullable = (name: string) => ({ anyOf: [ref(name), { type: 'null' }] });
const object = (properties: Record<string, unknown>, required = Object.keys(properties), extra: Record<string, unknown> = {}) =>
  ({ type: 'object', properties, ...(required.length > 0 ? { required } : {}), additionalProperties: false, ...extra });

const tokenLogprob = { token: string, bytes: { type: 'array', items: integer }, logprob: { type: 'number' } };

export const componentSchemas = [
  {
    $id: 'CompletionUsage',
    ...object({
      prompt_tokens: integer,
      completion_tokens: integer,
      total_tokens: integer,
      prompt_tokens_details: object({ cached_tokens: { ...integer, description: 'Prompt tokens whose KV came from the prefix cache.' } }),
      completion_tokens_details: object({
        accepted_prediction_tokens: { ...integer, description: 'Tokens of the Predicted Output (`prediction`) that appeared in the completion.' },
        rejected_prediction_tokens: { ...integer, description: 'Tokens of the Predicted Output that did not.' },
      }),
      speculative_decoding: object({
        draft_tokens: { ...integer, description: 'Tokens the proposers drafted.' },
        accepted_draft_tokens: { ...integer, description: 'Drafted tokens the target accepted.' },
      }, undefined, { description: 'Extension: the speculative decoder\'s figures for this request.' }),
    }),
  },
  {
    $id: 'CompletionLogprobs',
    ...object({
      tokens: { type: 'array', items: string },
      token_logprobs: { type: 'array', items: { type: 'number' } },
      top_logprobs: { type: 'array', items: { type: 'object', additionalProperties: { type: 'number' } } },
      text_offset: { type: 'array', items: integer },
    }),
  },
  {
    $id: 'ChatCompletionTokenLogprob',
    ...object({ ...tokenLogprob, top_logprobs: { type: 'array', items: object(tokenLogprob) } }),
  },
  {
    $id: 'ChatCompletionLogprobs',
    ...object({ content: { type: 'array', items: ref('ChatCompletionTokenLogprob') }, refusal: { type: 'null' } }),
  },
  {
    $id: 'ChatCompletionMessageToolCall',
    ...object({ id: string, type: { const: 'function' }, function: object({ name: string, arguments: { ...string, description: 'JSON text.' } }) }),
  },
  {
    $id: 'ChatCompletionMessageToolCallChunk',
    description: 'A streamed call: first its id, type and name (arguments empty), then its arguments.',
    ...object({ index: integer, id: string, type: { const: 'function' }, function: object({ name: string, arguments: string }, ['arguments']) }, ['index']),
  },
  {
    $id: 'CreateCompletionResponse',
    ...object({
      id: string, object: { const: 'text_completion' }, created, model: string,
      choices: { type: 'array', items: object({ index: integer, text: string, logprobs: nullable('CompletionLogprobs'), finish_reason: finishReason }) },
      usage: ref('CompletionUsage'),
    }),
  },
  {
    $id: 'CompletionChunk',
    description: 'One server-sent event of a streamed completion. A choice\'s finish_reason is null until its last chunk; with ' +
      'stream_options.include_usage a last chunk has no choices and the usage.',
    ...object({
      id: string, object: { const: 'text_completion' }, created, model: string,
      choices: {
        type: 'array',
        items: object({ index: integer, text: string, logprobs: nullable('CompletionLogprobs'), finish_reason: { anyOf: [finishReason, { type: 'null' }] } }),
      },
      usage: ref('CompletionUsage'),
    }, ['id', 'object', 'created', 'model', 'choices']),
  },
  {
    $id: 'CreateChatCompletionResponse',
    ...object({
      id: string, object: { const: 'chat.completion' }, created, model: string,
      choices: {
        type: 'array',
        items: object({
          index: integer,
          message: object({
            role: { const: 'assistant' },
            content: { type: ['string', 'null'], description: 'null where the reply is tool calls only.' },
            refusal: { type: 'null' },
            tool_calls: { type: 'array', items: ref('ChatCompletionMessageToolCall') },
          }, ['role', 'content', 'refusal']),
          logprobs: nullable('ChatCompletionLogprobs'),
          finish_reason: { enum: ['stop', 'length', 'tool_calls'] },
        }),
      },
      usage: ref('CompletionUsage'),
    }),
  },
  {
    $id: 'ChatCompletionChunk',
    description: 'One server-sent event of a streamed chat completion: the role first, then content deltas (where tools may be ' +
      'called, the content and calls once the choice ends), then an empty delta with the finish_reason; with ' +
      'stream_options.include_usage a last chunk has no choices and the usage.',
    ...object({
      id: string, object: { const: 'chat.completion.chunk' }, created, model: string,
      choices: {
        type: 'array',
        items: object({
          index: integer,
          delta: object({
            role: { const: 'assistant' }, content: string, tool_calls: { type: 'array', items: ref('ChatCompletionMessageToolCallChunk') },
          }, []),
          logprobs: nullable('ChatCompletionLogprobs'),
          finish_reason: { enum: ['stop', 'length', 'tool_calls', null] },
        }),
      },
      usage: ref('CompletionUsage'),
    }, ['id', 'object', 'created', 'model', 'choices']),
  },
  {
    $id: 'Model',
    ...object({
      id: string, object: { const: 'model' }, created, owned_by: string,
      root: { ...string, description: 'Extension (vLLM): the model the id serves.' },
      max_model_len: { ...integer, description: 'Extension (vLLM): the context window, in tokens.' },
      dtype: { ...string, description: 'Extension: the target\'s weights\' type.' },
      device: { ...string, description: 'Extension: where the target runs.' },
      draft: { ...string, description: 'Extension: the draft model, "ngram", or "none".' },
    }),
  },
  { $id: 'ListModelsResponse', ...object({ object: { const: 'list' }, data: { type: 'array', items: ref('Model') } }) },
  {
    $id: 'TokenizeResponse',
    ...object({ tokens: { type: 'array', items: integer }, count: integer, max_model_len: { ...integer, description: 'The context window, in tokens.' } }),
  },
  { $id: 'DetokenizeResponse', ...object({ prompt: { ...string, description: 'The text of the tokens.' } }) },
  { $id: 'HealthResponse', ...object({ status: { const: 'ok' } }) },
  {
    $id: 'Error',
    ...object({
      message: string,
      type: { enum: [...new Set(Object.values(errorCatalog).map((e) => e.type))] },
      param: { type: ['string', 'null'], description: 'The request field at fault, where one is.' },
      code: { enum: Object.keys(errorCatalog) },
    }),
  },
  { $id: 'ErrorResponse', ...object({ error: ref('Error') }) },
];

/** A 200 whose body is the named component. */
export function okResponse(name: string, description: string) {
  return { description, content: { 'application/json': { schema: ref(name) } } };
}

/** A generation route's 200: the JSON object, or with `stream: true` its chunks as server-sent events. */
export function generationResponse(name: string, chunk: string, what: string) {
  return {
    description: `${what}; with \`stream: true\`, server-sent events (text/event-stream): \`data: {${chunk}}\` per chunk, ` +
      'then `data: [DONE]`. An error after the stream opened comes as one `data: {ErrorResponse}` before `[DONE]`.',
    content: { 'application/json': { schema: ref(name) }, 'text/event-stream': { schema: ref(chunk) } },
  };
}

const errorDescriptions = {
  400: 'Invalid request: a field fails the schema, or the model cannot take it (context window, token ids).',
  401: 'Missing or incorrect API key.',
  404: '`model` names a model this server does not serve.',
  413: 'The body is larger than --body-limit.',
  415: 'The body is not application/json.',
  429: 'The server is busy (a full request queue); retry after Retry-After seconds.',
  500: 'The server failed.',
  503: 'The models are loading, or the engine is restarting; retry after Retry-After seconds.',
};

/** The error responses a route can give, in OpenAI's shape. */
export function errorResponses(...statuses: (keyof typeof errorDescriptions)[]) {
  return Object.fromEntries(statuses.map((s) => [s, { description: errorDescriptions[s], content: { 'application/json': { schema: ref('ErrorResponse') } } }]));
}

/** A route that takes a JSON body and reaches the model. */
export const modelRouteErrors = errorResponses(400, 401, 404, 413, 415, 429, 500, 503);
