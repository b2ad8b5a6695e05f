// Logprobs that describe the text actually returned: byte-fallback pieces decoded (stories260K's "<0x0A>" is "\n"),
// text_offset counting characters of the returned text, chat `bytes` the token's own bytes, and a token inside a
// multi-byte character shown as `bytes:\xNN`.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { post, startServer, type TestServer } from '../../helpers/test-server.ts';
import { storiesModel } from '../../helpers/model-fixtures.ts';
import { tokenEntry } from '../../../src/server/openai-format.ts';

describe('logprobs of byte tokens', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startServer({ target: storiesModel(), draft: 'ngram', servedModelName: 'model', engineThread: 'main' });
  });
  afterAll(() => server.close());

  it('completions: tokens concatenate to the text and text_offset points into it', async () => {
    // The greedy text from here starts with a newline (a byte-fallback token) and runs on for a while.
    const prompts = ['Once upon a time, there was a little girl named Lily. She loved to play outside in the park.', 'Lily'];
    for (const prompt of prompts) {
      for (const stream of [false, true]) {
        const body = { model: 'model', prompt, max_tokens: 40, temperature: 0, logprobs: 1 };
        let text = '';
        let tokens: string[] = [];
        let offsets: number[] = [];
        if (!stream) {
          const r = await post(`${server.url}/v1/completions`, body);
          text = r.json.choices[0].text;
          ({ tokens, text_offset: offsets } = r.json.choices[0].logprobs);
        } else {
          const raw = await (await fetch(`${server.url}/v1/completions`, { method: 'POST', headers: { 'content-type': 'application/json' },
            body: JSON.stringify({ ...body, stream: true }) })).text();
          for (const line of raw.split('\n').filter((l) => l.startsWith('data: {'))) {
            const choice = JSON.parse(line.slice(6)).choices[0];
            text += choice.text;
            if (choice.logprobs) {
              tokens = tokens.concat(choice.logprobs.tokens);
              offsets = offsets.concat(choice.logprobs.text_offset);
            }
          }
        }
        expect(tokens.join(''), `${prompt} stream ${stream}`).toBe(text);
        if (prompt === prompts[0]) expect(tokens).toContain('\n'); // a byte-fallback token was generated
        expect(tokens.some((t) => /<0x/.test(t))).toBe(false);
        tokens.forEach((t, i) => expect(text.slice(offsets[i], offsets[i] + t.length), `token ${i}`).toBe(t));
      }
    }
  });

  it('chat: tokens are text and bytes are their own bytes', async () => {
    const r = await post(`${server.url}/v1/chat/completions`, { model: 'model', messages: [{ role: 'user', content: 'Lily' }],
      max_tokens: 40, temperature: 0, logprobs: true, top_logprobs: 2 });
    const content = r.json.choices[0].logprobs.content as { token: string; bytes: number[]; top_logprobs: { token: string; bytes: number[] }[] }[];
    expect(content.map((c) => c.token).join('')).toBe(r.json.choices[0].message.content);
    for (const c of [...content, ...content.flatMap((x) => x.top_logprobs)]) {
      expect(c.token).not.toMatch(/^<0x/);
      expect(Buffer.from(c.bytes).toString('utf8')).toBe(c.token);
    }
  });

  it('shows a token inside a multi-byte character by its bytes', () => {
    const tokenizer = server.served.tokenizer;
    const colon = tokenizer.tokenBytes().findIndex((b) => b?.length === 1 && b[0] === 0x3a);
    expect(tokenEntry(tokenizer, colon)).toEqual({ token: ':', bytes: [58] });
    const lead = tokenizer.tokenBytes().findIndex((b) => b?.length === 1 && b[0] === 0xe2);
    expect(tokenEntry(tokenizer, lead)).toEqual({ token: 'bytes:\\xe2', bytes: [0xe2] });
  });
});
