// Real responses of every endpoint, streamed chunks one by one, for the tests that hold them to a schema (the served
// OpenAPI document's, OpenAI's published one): each request is chosen to bring out a part of the shapes (logprobs,
// tool calls whole and streamed, an echoed prompt, the usage chunk, errors).

export interface ApiSample {
  /** The request, in words, and which of its answers this is ("chunk 3"). */
  name: string;
  method: 'GET' | 'POST';
  path: string;
  status: number;
  mediaType: 'application/json' | 'text/event-stream';
  body: any;
}

interface SampleRequest {
  name: string;
  method: 'GET' | 'POST';
  path: string;
  body?: unknown;
  status: number;
}

const messages = [{ role: 'user', content: 'Weather in Paris?' }];
// One short-argument tool: a required call fits stories260K's 512-token context with room to spare.
const weather = {
  type: 'function',
  function: { name: 'weather', parameters: { type: 'object', required: ['city'], properties: { city: { type: 'string', maxLength: 6 } } } },
};
const toolCall = { messages, tools: [weather], tool_choice: 'required', parallel_tool_calls: false, max_tokens: 100, temperature: 0 };
const streamed = { stream: true, stream_options: { include_usage: true } };

export const SAMPLE_REQUESTS: SampleRequest[] = [
  { name: 'completion of two prompts with logprobs', method: 'POST', path: '/v1/completions', body: { prompt: ['Once upon a time', 'The dog'], max_tokens: 6, logprobs: 2, seed: 1 }, status: 200 },
  { name: 'streamed completion with logprobs', method: 'POST', path: '/v1/completions', body: { prompt: 'Once upon a time', max_tokens: 6, logprobs: 2, ...streamed }, status: 200 },
  { name: 'streamed completion echoing its prompt', method: 'POST', path: '/v1/completions', body: { prompt: 'The dog', max_tokens: 4, echo: true, ...streamed }, status: 200 },
  { name: 'chat with logprobs', method: 'POST', path: '/v1/chat/completions', body: { messages, max_tokens: 6, logprobs: true, top_logprobs: 2 }, status: 200 },
  { name: 'chat calling a tool', method: 'POST', path: '/v1/chat/completions', body: toolCall, status: 200 },
  { name: 'streamed chat with logprobs', method: 'POST', path: '/v1/chat/completions', body: { messages, max_tokens: 6, logprobs: true, top_logprobs: 2, ...streamed }, status: 200 },
  { name: 'streamed chat calling a tool', method: 'POST', path: '/v1/chat/completions', body: { ...toolCall, ...streamed }, status: 200 },
  { name: 'models', method: 'GET', path: '/v1/models', status: 200 },
  { name: 'tokenize a prompt', method: 'POST', path: '/tokenize', body: { prompt: 'Once upon a time' }, status: 200 },
  { name: 'tokenize messages', method: 'POST', path: '/tokenize', body: { messages }, status: 200 },
  { name: 'detokenize', method: 'POST', path: '/detokenize', body: { tokens: [403, 407, 261, 378] }, status: 200 },
  { name: 'health', method: 'GET', path: '/health', status: 200 },
  { name: 'a field of the wrong type', method: 'POST', path: '/v1/chat/completions', body: { messages, max_tokens: 'x' }, status: 400 },
  { name: 'an unknown model', method: 'POST', path: '/v1/completions', body: { model: 'nope', prompt: 'a' }, status: 404 },
  { name: 'tokenize with neither prompt nor messages', method: 'POST', path: '/tokenize', body: {}, status: 400 },
];

/** The data of each server-sent event, `[DONE]` checked and left out. */
export function sseData(text: string): unknown[] {
  const events = text.split('\n\n').filter((e) => e !== '');
  const data = events.map((e) => {
    if (!e.startsWith('data: ')) throw new Error(`not a data event: ${JSON.stringify(e)}`);
    return e.slice('data: '.length);
  });
  if (data.pop() !== '[DONE]') throw new Error('the stream does not end with data: [DONE]');
  return data.map((d) => JSON.parse(d));
}

/** Sends a request as a client would and returns its answer: one sample, or one per streamed chunk. */
export async function sample(url: string, r: Omit<SampleRequest, 'status'>): Promise<ApiSample[]> {
  const response = await fetch(`${url}${r.path}`, {
    method: r.method, ...(r.body === undefined ? {} : { headers: { 'content-type': 'application/json' }, body: JSON.stringify(r.body) }),
  });
  const text = await response.text();
  const base = { method: r.method, path: r.path, status: response.status };
  if (response.headers.get('content-type')?.startsWith('text/event-stream')) {
    return sseData(text).map((body, i) => ({ ...base, name: `${r.name}, chunk ${i}`, mediaType: 'text/event-stream', body }));
  }
  if (!response.headers.get('content-type')?.startsWith('application/json')) throw new Error(`${r.name}: content-type ${response.headers.get('content-type')}`);
  return [{ ...base, name: r.name, mediaType: 'application/json', body: JSON.parse(text) }];
}

/** Every SAMPLE_REQUESTS answer from the server at `url`; throws where one has another status than expected. */
export async function collectSamples(url: string): Promise<ApiSample[]> {
  const samples: ApiSample[] = [];
  for (const r of SAMPLE_REQUESTS) {
    const answers = await sample(url, r);
    if (answers[0].status !== r.status) throw new Error(`${r.name}: status ${answers[0].status}, expected ${r.status}: ${JSON.stringify(answers[0].body)}`);
    samples.push(...answers);
  }
  return samples;
}
