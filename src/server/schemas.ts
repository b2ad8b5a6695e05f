// JSON Schemas of the OpenAI request bodies: validated by Fastify's Ajv, published by @fastify/swagger, and the routes'
// TypeScript types (FromSchema), so the request's shape is written once. Unknown fields are rejected, as OpenAI does
// ("Unrecognized request argument"). A field of several shapes names them in its `title`, which a 400 quotes.
// Each body's `examples[0]` is what Swagger UI's "Try it out" sends: without one it builds a body from the types, every
// optional field set ("string" for a string, the minimum for a number), which this server rightly refuses. The examples
// leave `model` out (optional here; the served name is known only at run time); the detokenize example's ids are
// stories260K's for its text, in range for any vocabulary of 512 tokens or more.
import type { FromSchema } from 'json-schema-to-ts';

const tokenIds = { type: 'array', items: { type: 'integer' }, minItems: 1 } as const;

const samplingFields = {
  model: { type: 'string', description: 'Served model name (see GET /v1/models); optional, as vLLM and llama.cpp take it: this server serves one.' },
  max_tokens: { type: ['integer', 'null'], minimum: 1 },
  temperature: { type: ['number', 'null'], minimum: 0, maximum: 2 },
  top_p: { type: ['number', 'null'], exclusiveMinimum: 0, maximum: 1 },
  top_k: { type: ['integer', 'null'], minimum: -1, description: 'Extension (vLLM): keep the k most likely tokens; -1 or 0 disables.' },
  min_p: { type: ['number', 'null'], minimum: 0, maximum: 1, description: 'Extension (vLLM).' },
  n: { type: ['integer', 'null'], minimum: 1 },
  stop: { title: 'a string, an array of non-empty strings, or null', anyOf: [{ type: 'string' }, { type: 'array', items: { type: 'string', minLength: 1 } }, { type: 'null' }] },
  // Seeds are used whole: JSON numbers beyond 2^53 cannot be told apart, so they are refused.
  seed: { type: ['integer', 'null'], minimum: -Number.MAX_SAFE_INTEGER, maximum: Number.MAX_SAFE_INTEGER },
  stream: { type: ['boolean', 'null'] },
  stream_options: {
    title: 'an object { include_usage: boolean } or null',
    anyOf: [{ type: 'object', properties: { include_usage: { type: 'boolean' } }, additionalProperties: false }, { type: 'null' }],
  },
  user: { type: 'string' },
  store: { type: ['boolean', 'null'], description: 'Accepted and ignored (OpenAI: keep the completion for distillation; nothing is kept here).' },
  metadata: {
    description: 'Accepted and ignored (OpenAI: tags for stored completions).',
    anyOf: [{ type: 'object', maxProperties: 16, additionalProperties: { type: 'string', maxLength: 512 } }, { type: 'null' }],
  },
  service_tier: { enum: ['auto', 'default', 'flex', 'scale', 'priority', null], description: 'Accepted and ignored: one tier here.' },
  ignore_eos: { type: 'boolean', description: 'Extension (vLLM).' },
  presence_penalty: { type: ['number', 'null'], minimum: -2, maximum: 2 },
  frequency_penalty: { type: ['number', 'null'], minimum: -2, maximum: 2 },
  logit_bias: {
    title: 'an object mapping token ids (as strings) to biases from -100 to 100 (at most 1024), or null',
    description: 'Added to those tokens\' logits before sampling (OpenAI), exact under speculation.',
    anyOf: [
      { type: 'object', propertyNames: { pattern: '^(0|[1-9][0-9]{0,9})$' }, additionalProperties: { type: 'number', minimum: -100, maximum: 100 }, maxProperties: 1024 },
      { type: 'null' },
    ],
  },
  repetition_penalty: {
    type: ['number', 'null'], exclusiveMinimum: 0, maximum: 10,
    description: 'Extension (vLLM / Hugging Face): a token already in the prompt or the output has a positive logit divided by it and a negative one multiplied; 1: off.',
  },
  response_format: {
    title: '{ "type": "text" }, { "type": "json_object" }, { "type": "json_schema", "json_schema": { "name", "schema", "strict" } }, or { "type": "structural_tag", "format" } / { "type": "structural_tag", "structures", "triggers" }',
    description: 'text, json_object (any JSON), json_schema (output constrained to the schema), or structural_tag (XGrammar structural tags, as vLLM takes them).',
    anyOf: [
      { type: 'object', required: ['type'], additionalProperties: false, properties: { type: { enum: ['text', 'json_object'] } } },
      {
        type: 'object', required: ['type', 'json_schema'], additionalProperties: false,
        properties: {
          type: { const: 'json_schema' },
          json_schema: {
            type: 'object', required: ['name'], additionalProperties: false,
            properties: { name: { type: 'string' }, description: { type: 'string' }, schema: { type: 'object' }, strict: { type: ['boolean', 'null'] } },
          },
        },
      },
      {
        type: 'object', required: ['type'],
        properties: {
          type: { const: 'structural_tag' },
          format: { type: 'object' },
          structures: {
            type: 'array', maxItems: 256,
            items: { type: 'object', required: ['begin', 'end'], additionalProperties: false, properties: { begin: { type: 'string' }, schema: { type: 'object' }, end: { type: 'string' } } },
          },
          triggers: { type: 'array', items: { type: 'string' }, maxItems: 256 },
        },
        additionalProperties: false,
      },
      { type: 'null' },
    ],
  },
  guided_regex: {
    title: 'a regular expression',
    description: 'Extension (vLLM): the output matches this regular expression (XGrammar\'s dialect).',
    type: ['string', 'null'],
  },
  guided_choice: {
    title: 'an array of 1 to 1024 strings',
    description: 'Extension (vLLM): the output is exactly one of these strings.',
    anyOf: [{ type: 'array', items: { type: 'string' }, minItems: 1, maxItems: 1024 }, { type: 'null' }],
  },
  guided_grammar: {
    title: 'an EBNF grammar',
    description: 'Extension (vLLM): the output follows this EBNF grammar (XGrammar\'s dialect, GBNF-like; the root rule is `root`).',
    type: ['string', 'null'],
  },
  structural_tag: {
    title: 'an XGrammar structural tag, as an object or a JSON string',
    description: 'Extension (vLLM): an XGrammar structural tag ({ "type": "structural_tag", "format": ... }).',
    anyOf: [{ type: 'object' }, { type: 'string' }, { type: 'null' }],
  },
  guided_json: {
    title: 'a JSON schema object or a JSON string',
    description: 'Extension (vLLM): a JSON schema, as an object or a JSON string, that the output must follow.',
    anyOf: [{ type: 'object' }, { type: 'string' }, { type: 'null' }],
  },
  speculative: {
    title: 'false, true, or an object { num_tokens: integer 0..16 }',
    description: 'Extension: false disables speculative decoding for this request; { num_tokens } fixes the draft length (no adaptive choice).',
    anyOf: [
      { type: 'boolean' },
      { type: 'object', properties: { num_tokens: { type: 'integer', minimum: 0, maximum: 16 } }, additionalProperties: false },
    ],
  },
} as const;

export const completionBodySchema = {
  type: 'object',
  examples: [{ prompt: 'Once upon a time', max_tokens: 16, temperature: 0 }],
  required: ['prompt'],
  additionalProperties: false,
  properties: {
    ...samplingFields,
    prompt: {
      title: 'a string, an array of strings, an array of token ids, or an array of arrays of token ids',
      anyOf: [
        { type: 'string' },
        { type: 'array', items: { type: 'string' }, minItems: 1 },
        tokenIds,
        { type: 'array', items: tokenIds, minItems: 1 },
      ],
    },
    logprobs: { type: ['integer', 'null'], minimum: 0, maximum: 20 },
    echo: { type: ['boolean', 'null'] },
    best_of: { type: ['integer', 'null'], minimum: 1 },
    suffix: { type: ['string', 'null'] },
  },
} as const;

const contentPart = { type: 'object', required: ['type'], properties: { type: { const: 'text' }, text: { type: 'string' } } } as const;
const messageContent = { title: 'a string, an array of text parts, or null', anyOf: [{ type: 'string' }, { type: 'array', items: contentPart }, { type: 'null' }] } as const;
const chatMessages = {
  type: 'array',
  minItems: 1,
  items: {
    type: 'object',
    required: ['role'],
    properties: {
      role: { enum: ['system', 'developer', 'user', 'assistant', 'tool'] },
      content: messageContent,
      name: { type: 'string' },
      /** An assistant turn's calls (the history of a tool-using conversation). */
      tool_calls: {
        type: 'array', maxItems: 128,
        items: {
          type: 'object', required: ['id', 'type', 'function'], additionalProperties: false,
          properties: {
            id: { type: 'string' }, type: { const: 'function' },
            function: { type: 'object', required: ['name', 'arguments'], additionalProperties: false, properties: { name: { type: 'string' }, arguments: { type: 'string' } } },
          },
        },
      },
      /** A tool turn: the call it answers. */
      tool_call_id: { type: 'string' },
    },
  },
} as const;

const toolName = { type: 'string', pattern: '^[a-zA-Z0-9_-]{1,64}$' } as const;

/** POST /tokenize (vLLM's): a prompt, or chat messages rendered by the chat template. */
export const tokenizeBodySchema = {
  type: 'object',
  examples: [{ prompt: 'Once upon a time' }],
  additionalProperties: false,
  properties: {
    model: samplingFields.model,
    prompt: { type: 'string' },
    messages: chatMessages,
    add_special_tokens: { type: 'boolean', description: 'For a prompt: BOS/EOS as the tokenizer adds them (default true). Messages: the chat template adds its own.' },
  },
} as const;

/** POST /detokenize (vLLM's). */
export const detokenizeBodySchema = {
  type: 'object',
  examples: [{ tokens: [403, 407, 261, 378] }],
  required: ['tokens'],
  additionalProperties: false,
  properties: { model: samplingFields.model, tokens: { type: 'array', items: { type: 'integer' }, maxItems: 1_000_000 } },
} as const;

export const chatBodySchema = {
  type: 'object',
  examples: [{ messages: [{ role: 'user', content: 'Tell me a story.' }], max_tokens: 16 }],
  required: ['messages'],
  additionalProperties: false,
  properties: {
    ...samplingFields,
    messages: chatMessages,
    max_completion_tokens: { type: ['integer', 'null'], minimum: 1 },
    tools: {
      title: 'an array of at most 128 { type: "function", function: { name, description, parameters, strict } }, or null',
      anyOf: [{
        type: 'array', maxItems: 128,
        items: {
          type: 'object', required: ['type', 'function'], additionalProperties: false,
          properties: {
            type: { const: 'function' },
            function: {
              type: 'object', required: ['name'], additionalProperties: false,
              properties: { name: toolName, description: { type: 'string' }, parameters: { type: 'object' }, strict: { type: ['boolean', 'null'] } },
            },
          },
        },
      }, { type: 'null' }],
    },
    tool_choice: {
      title: '"none", "auto", "required", or { "type": "function", "function": { "name" } }',
      anyOf: [
        { enum: ['none', 'auto', 'required'] },
        {
          type: 'object', required: ['type', 'function'], additionalProperties: false,
          properties: { type: { const: 'function' }, function: { type: 'object', required: ['name'], additionalProperties: false, properties: { name: toolName } } },
        },
        { type: 'null' },
      ],
    },
    parallel_tool_calls: { type: ['boolean', 'null'] },
    logprobs: { type: ['boolean', 'null'] },
    top_logprobs: { type: ['integer', 'null'], minimum: 0, maximum: 20 },
    prediction: {
      title: 'an object { type: "content", content } or null',
      anyOf: [
        { type: 'object', required: ['type', 'content'], properties: { type: { const: 'content' }, content: messageContent }, additionalProperties: false },
        { type: 'null' },
      ],
    },
  },
} as const;

/** The fields both generation routes share, as a schema for their type. */
const commonBodySchema = { type: 'object', additionalProperties: false, properties: samplingFields } as const;

export type CommonBody = FromSchema<typeof commonBodySchema>;
export type CompletionBody = FromSchema<typeof completionBodySchema>;
export type ChatBody = FromSchema<typeof chatBodySchema>;
export type MessageContent = FromSchema<typeof messageContent>;
export type TokenizeBody = FromSchema<typeof tokenizeBodySchema>;
export type DetokenizeBody = FromSchema<typeof detokenizeBodySchema>;
