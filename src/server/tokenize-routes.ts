// POST /tokenize and POST /detokenize, as vLLM serves them: a prompt (or chat messages, rendered by the chat template)
// to token ids with the context window beside them, and token ids back to text.
import type { FastifyInstance } from 'fastify';
import { badRequest } from './errors.ts';
import { checkModel, checkTokenIds } from './openai-format.ts';
import { chatPromptIds } from './chat-route.ts';
import { detokenizeBodySchema, tokenizeBodySchema, type DetokenizeBody, type TokenizeBody } from './schemas.ts';
import { errorResponses, okResponse } from './response-schemas.ts';
import type { RouteDeps } from './route-deps.ts';

const tokenizeErrors = errorResponses(400, 401, 404, 413, 415, 500, 503);

export function registerTokenizeRoutes(app: FastifyInstance, deps: RouteDeps): void {
  app.post('/tokenize', {
    schema: {
      summary: 'Token ids of a prompt or of chat messages (vLLM)', operationId: 'tokenize', tags: ['Extensions'], body: tokenizeBodySchema,
      response: { 200: okResponse('TokenizeResponse', 'The token ids and the context window'), ...tokenizeErrors },
    },
  }, async (req) => {
    const model = deps.model();
    const body = req.body as TokenizeBody;
    checkModel(body, model);
    if ((body.prompt === undefined) === (body.messages === undefined)) throw badRequest('give either prompt or messages', body.prompt === undefined ? 'prompt' : 'messages');
    const tokens = body.messages ? chatPromptIds(model, body.messages) : model.tokenizer.encode(body.prompt!, body.add_special_tokens ?? true);
    return { tokens, count: tokens.length, max_model_len: model.maxModelLen };
  });

  app.post('/detokenize', {
    schema: {
      summary: 'The text of token ids (vLLM)', operationId: 'detokenize', tags: ['Extensions'], body: detokenizeBodySchema,
      response: { 200: okResponse('DetokenizeResponse', 'The text'), ...tokenizeErrors },
    },
  }, async (req) => {
    const model = deps.model();
    const body = req.body as DetokenizeBody;
    checkModel(body, model);
    checkTokenIds(body.tokens, model.vocabSize, 'tokens');
    return { prompt: model.tokenizer.decode(body.tokens) };
  });
}
