// A streaming client that stops reading: the server holds at most --stream-buffer-limit bytes of its frames beyond the
// socket's buffers, then closes the connection and cancels the request (its KV cache freed), instead of buffering the
// whole generation; a client that reads slowly but keeps reading gets every frame, in order.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect } from 'node:net';
import { startServer, type TestServer } from '../../helpers/test-server.ts';
import { tinyModel } from '../../helpers/model-fixtures.ts';
import { waitFor } from '../../helpers/wait.ts';

// 32 choices x 1000 tokens with 5 top logprobs: ~10 MB of frames, more than loopback's socket buffers hold.
const BODY = JSON.stringify({ model: 'model', prompt: 'a', max_tokens: 1000, n: 32, ignore_eos: true, logprobs: 5, stream: true });

function openStream(url: string, body = BODY) {
  const { hostname, port } = new URL(url);
  const socket = connect(Number(port), hostname);
  socket.write(`POST /v1/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
  return socket;
}

describe('slow stream readers', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startServer({ target: tinyModel({ maxPositionEmbeddings: 1024 }), draft: 'none', servedModelName: 'model',
      maxN: 32, maxBatch: 32, streamBufferBytes: 64 * 1024, engineThread: 'main' });
  });
  afterAll(() => server.close());

  it('cuts off a client that does not read, and frees its request', async () => {
    const socket = openStream(server.url);
    socket.pause(); // never reads
    const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()));
    await waitFor(() => server.served.engine.numRunning > 0);
    await waitFor(() => server.served.engine.numRunning === 0 && server.served.engine.numWaiting === 0, 60_000);
    expect(server.served.engine.kvBytes).toBe(0);
    // What the socket holds is the start of the stream and never its end.
    let received = '';
    socket.on('data', (d: Buffer) => (received += d.toString()));
    socket.resume();
    await closed;
    expect(received).toMatch(/^HTTP\/1.1 200/);
    expect(received).not.toContain('data: [DONE]');
    expect((await fetch(`${server.url}/health`)).status).toBe(200);
  }, 90_000);

  it('gives a reader that pauses and resumes every frame', async () => {
    const socket = openStream(server.url, JSON.stringify({ model: 'model', prompt: 'a', max_tokens: 400, n: 16, ignore_eos: true, logprobs: 5, stream: true }));
    let received = '';
    socket.on('data', (d: Buffer) => {
      received += d.toString();
      socket.pause();
      setImmediate(() => socket.resume()); // slow, but reading
    });
    await new Promise<void>((resolve) => socket.on('data', () => received.includes('data: [DONE]') && resolve()));
    socket.destroy();
    const frames = received.split('\n').filter((l) => l.startsWith('data: {'));
    const tokens = frames.reduce((n, f) => n + ((JSON.parse(f.slice(6)).choices[0]?.logprobs?.tokens.length as number) ?? 0), 0);
    expect(tokens).toBe(16 * 400);
  }, 90_000);
});
