// Pins the error catalog (what clients see: status, OpenAI type, code) and the one translation function.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ApiError, errorCatalog, errors, toApiError } from '../../../src/server/errors.ts';

describe('the error catalog', () => {
  it('is exactly this table: changing a status or a type is a change of the API', () => {
    expect(errorCatalog).toEqual({
      invalid_request: { status: 400, type: 'invalid_request_error' },
      context_length_exceeded: { status: 400, type: 'invalid_request_error' },
      unsupported_parameter: { status: 400, type: 'invalid_request_error' },
      invalid_api_key: { status: 401, type: 'authentication_error' },
      model_not_found: { status: 404, type: 'invalid_request_error' },
      not_found: { status: 404, type: 'invalid_request_error' },
      method_not_allowed: { status: 405, type: 'invalid_request_error' },
      request_too_large: { status: 413, type: 'invalid_request_error' },
      unsupported_media_type: { status: 415, type: 'invalid_request_error' },
      queue_full: { status: 429, type: 'rate_limit_error' },
      server_error: { status: 500, type: 'server_error' },
      not_ready: { status: 503, type: 'server_error' },
    });
  });

  it('has no entry that nothing raises', () => {
    const dir = 'src/server';
    const source = readdirSync(dir).filter((f) => f.endsWith('.ts') && f !== 'errors.ts').map((f) => readFileSync(join(dir, f), 'utf8')).join('\n');
    const made = readFileSync(join(dir, 'errors.ts'), 'utf8').split('/** The errors whose message')[1];
    for (const code of Object.keys(errorCatalog)) {
      const raised = source.includes(`'${code}'`) || made.includes(`'${code}'`) || (code === 'invalid_request' && made.includes('badRequest('));
      expect(raised, code).toBe(true);
    }
  });

  it('makes every fixed-message error with a code from the catalog, its status, and a message', () => {
    for (const [name, make] of Object.entries(errors)) {
      const e = (make as (...a: string[]) => ApiError)('GET', '/x');
      expect(errorCatalog[e.code], name).toBeDefined();
      expect(e.status).toBe(errorCatalog[e.code].status);
      expect(e.message.length, name).toBeGreaterThan(10);
      expect(e.toJSON()).toEqual({ error: { message: e.message, type: errorCatalog[e.code].type, param: e.param, code: e.code } });
    }
  });

  it('tells a client of a passing 503 or a 429 when to come back, and not of a shutdown', () => {
    for (const e of [errors.modelsLoading(), errors.engineRestarting(), errors.engineStopped(), errors.queueFull()]) {
      expect(e.headers['retry-after']).toBe('1');
    }
    expect(errors.shuttingDown().headers['retry-after']).toBeUndefined();
  });
});

describe('toApiError', () => {
  it('passes an ApiError through and hides the insides of anything else behind a 500', () => {
    const e = errors.queueFull();
    expect(toApiError(e)).toBe(e);
    for (const thrown of [new Error('secret path /etc/x'), 'a string', undefined, { statusCode: 503, message: 'upstream' }]) {
      const t = toApiError(thrown);
      expect(t.code).toBe('server_error');
      expect(t.message).not.toMatch(/secret|upstream/);
    }
  });

  it('names the shapes of a field that matched none, from its schema title', () => {
    const t = toApiError({
      validation: [
        { keyword: 'type', instancePath: '/stop', params: {}, message: 'must be string' },
        { keyword: 'anyOf', instancePath: '/stop', params: {}, parentSchema: { title: 'a string or null' } },
      ],
    });
    expect(t.toJSON().error).toEqual({ message: "'stop' must be a string or null", type: 'invalid_request_error', param: 'stop', code: 'invalid_request' });
  });

  it('names a missing, an unknown and an ill-typed parameter by its path', () => {
    const one = (issue: object) => toApiError({ validation: [{ params: {}, ...issue }] });
    expect(one({ keyword: 'required', instancePath: '', params: { missingProperty: 'model' } }).toJSON().error)
      .toMatchObject({ message: "'model' is a required property", param: 'model' });
    expect(one({ keyword: 'additionalProperties', instancePath: '/stream_options', params: { additionalProperty: 'x' } }).toJSON().error)
      .toMatchObject({ message: 'Unrecognized request argument supplied: stream_options.x', param: 'stream_options' });
    expect(one({ keyword: 'type', instancePath: '/messages/0/role', message: 'must be string', params: { type: 'string' } }).toJSON().error)
      .toMatchObject({ message: "'messages.0.role' must be a string", param: 'messages' });
    expect(one({ keyword: 'type', instancePath: '/max_tokens', params: { type: ['integer', 'null'] } }).toJSON().error)
      .toMatchObject({ message: "'max_tokens' must be an integer or null", param: 'max_tokens' });
    expect(one({ keyword: 'enum', instancePath: '/role', params: { allowedValues: ['user', 'tool'] } }).toJSON().error)
      .toMatchObject({ message: '\'role\' must be one of "user", "tool"' });
  });

  it("turns Fastify's body errors into 413, 415 and 400, and other client errors into 400", () => {
    expect(toApiError({ code: 'FST_ERR_CTP_BODY_TOO_LARGE', statusCode: 413 }, 1024).toJSON().error)
      .toMatchObject({ code: 'request_too_large', message: expect.stringContaining('1024 bytes') });
    expect(toApiError({ code: 'FST_ERR_CTP_INVALID_MEDIA_TYPE', statusCode: 415 }).status).toBe(415);
    expect(toApiError({ code: 'FST_ERR_CTP_EMPTY_JSON_BODY', statusCode: 400 }).status).toBe(400);
    expect(toApiError({ statusCode: 400, message: "URI malformed" }).toJSON().error).toMatchObject({ code: 'invalid_request', message: 'URI malformed' });
  });
});
