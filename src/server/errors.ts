// The error catalog: every error the API returns, with its HTTP status, OpenAI `type` and `code`.
// One Fastify error handler (app.ts) renders them as { error: { message, type, param, code } }.

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
