// The error catalog: every error the API returns, with its HTTP status and OpenAI `type`; the errors whose message is
// fixed are made here, once (`errors.*`); and one translation function (`toApiError`) turns anything thrown — a
// Fastify validation or parser error, an engine failure, a bug — into { error: { message, type, param, code } }.
import type { FastifyError } from 'fastify';

export const errorCatalog = {
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
} as const;

export type ErrorCode = keyof typeof errorCatalog;

export class ApiError extends Error {
  readonly status: number;
  readonly type: string;

  constructor(readonly code: ErrorCode, message: string, readonly param: string | null = null, readonly headers: Record<string, string> = {}) {
    super(message);
    this.status = errorCatalog[code].status;
    this.type = errorCatalog[code].type;
  }

  toJSON() {
    return { error: { message: this.message, type: this.type, param: this.param, code: this.code } };
  }
}

export const badRequest = (message: string, param: string | null = null) => new ApiError('invalid_request', message, param);

// A 429 or a passing 503 tells the client when to come back: one engine step drains the queue, a restart takes about
// as long as loading the models.
const RETRY_SOON = { 'retry-after': '1' };

/** The errors whose message does not depend on the request. */
export const errors = {
  modelsLoading: () => new ApiError('not_ready', 'The models are still loading. Retry shortly.', null, RETRY_SOON),
  engineRestarting: () => new ApiError('not_ready', 'The engine is restarting after a failure. Retry shortly.', null, RETRY_SOON),
  engineStopped: () => new ApiError('not_ready', 'The engine stopped while generating; the request was not completed. Retry shortly.', null, RETRY_SOON),
  shuttingDown: () => new ApiError('not_ready', 'The server is shutting down; retry on another instance.'),
  /** An admitted request the engine did not finish before it closed (distinct from the refusal above: clients and
   * tests can tell a request never started from one cut short). */
  closedMidway: () => new ApiError('not_ready', 'The server shut down before the request completed; retry on another instance.'),
  queueFull: () => new ApiError('queue_full', 'The server is busy: the request queue is full. Retry shortly.', null, RETRY_SOON),
  grammarsBusy: (why: string) => new ApiError('queue_full', `The server is busy: ${why}.`, null, RETRY_SOON),
  missingApiKey: () => new ApiError('invalid_api_key', 'Missing API key: send Authorization: Bearer KEY.'),
  incorrectApiKey: () => new ApiError('invalid_api_key', 'Incorrect API key provided.'),
  unknownRoute: (method: string, url: string) => new ApiError('not_found', `Unknown route: ${method} ${url.split('?')[0]}`),
  notJson: () => new ApiError('unsupported_media_type', 'Content-Type must be application/json'),
  bodyTooLarge: (limitBytes: number) => new ApiError('request_too_large', `Request body is larger than the limit of ${limitBytes} bytes (--body-limit, SPECSERVE_BODY_LIMIT)`),
  methodNotAllowed: (method: string, url: string, allowed: string) =>
    new ApiError('method_not_allowed', `Method ${method} is not allowed on ${url}; use ${allowed}`, null, { allow: allowed }),
  emptyBody: () => badRequest('Request body is empty; expected a JSON object'),
  notUtf8: () => badRequest('Request body is not valid UTF-8'),
  notAnObject: () => badRequest('Request body must be a JSON object'),
  badJson: (why: string) => badRequest(`We could not parse the JSON body of your request: ${why}`),
  internal: () => new ApiError('server_error', 'The server had an internal error while processing your request.'),
  engineFailed: (why: string) => new ApiError('server_error', `The engine failed while generating: ${why.split('\n')[0]}`),
};

interface AjvIssue {
  keyword: string;
  instancePath: string;
  message?: string;
  params: { missingProperty?: string; additionalProperty?: string; type?: string | string[]; allowedValues?: unknown[] };
  parentSchema?: { title?: string };
}

/** A request-validation failure, named by the parameter as OpenAI does. */
function validationError(issues: AjvIssue[]): ApiError {
  // A field of several shapes fails every branch, then its anyOf: name the shapes (its schema's title).
  const v = issues.find((e) => e.keyword === 'anyOf') ?? issues[0];
  const path = v.instancePath.replace(/^\//, '').replaceAll('/', '.');
  const param = path ? path.split('.')[0] : null;
  const top = (name: string) => param ?? name;
  const at = (name: string) => (path ? `${path}.${name}` : name);
  if (v.keyword === 'anyOf') return badRequest(`'${path}' must be ${v.parentSchema?.title ?? 'one of the accepted shapes'}`, param);
  if (v.params.missingProperty) return badRequest(`'${at(v.params.missingProperty)}' is a required property`, top(v.params.missingProperty));
  if (v.params.additionalProperty) {
    return badRequest(`Unrecognized request argument supplied: ${at(v.params.additionalProperty)}`, top(v.params.additionalProperty));
  }
  if (v.keyword === 'type') return badRequest(`'${path || 'body'}' must be ${typeNames(v.params.type)}`, param);
  if (v.keyword === 'enum' && v.params.allowedValues) {
    return badRequest(`'${path || 'body'}' must be one of ${v.params.allowedValues.map((x) => JSON.stringify(x)).join(', ')}`, param);
  }
  return badRequest(`${path || 'body'} ${v.message ?? 'is invalid'}`, param);
}

/** JSON Schema types in words: "an integer or null". */
function typeNames(type: string | string[] | undefined): string {
  const article: Record<string, string> = {
    integer: 'an integer', number: 'a number', string: 'a string', boolean: 'a boolean', object: 'an object', array: 'an array', null: 'null',
  };
  const names = (Array.isArray(type) ? type : String(type ?? '').split(',')).map((t) => article[t] ?? t);
  return names.length > 1 ? `${names.slice(0, -1).join(', ')} or ${names[names.length - 1]}` : names[0] ?? 'of another type';
}

/** Anything thrown while serving a request, in the API's terms. Unknown errors are the server's fault (500) and say
 * nothing of their insides. */
export function toApiError(err: unknown, bodyLimitBytes = 0): ApiError {
  if (err instanceof ApiError) return err;
  const e = err as Partial<FastifyError> | undefined;
  if (e?.validation && e.validation.length > 0) return validationError(e.validation as AjvIssue[]);
  if (e?.code === 'FST_ERR_CTP_BODY_TOO_LARGE') return errors.bodyTooLarge(bodyLimitBytes);
  if (e?.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') return errors.notJson();
  if (e?.code === 'FST_ERR_CTP_EMPTY_JSON_BODY') return errors.emptyBody();
  if (e?.statusCode && e.statusCode >= 400 && e.statusCode < 500) return badRequest(e.message ?? 'Bad request');
  return errors.internal();
}
