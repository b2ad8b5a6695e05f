// Server-sent events as OpenAI streams them: `data: {json}\n\n` chunks, then `data: [DONE]`.
import type { FastifyReply } from 'fastify';

export class SseWriter {
  private closed = false;

  constructor(private readonly reply: FastifyReply) {
    reply.hijack();
    reply.raw.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
    });
    reply.raw.on('close', () => (this.closed = true));
  }

  get isClosed(): boolean {
    return this.closed || this.reply.raw.destroyed;
  }

  send(data: unknown): void {
    if (!this.isClosed) this.reply.raw.write(`data: ${JSON.stringify(data)}\n\n`);
  }

  end(): void {
    if (!this.isClosed) this.reply.raw.end('data: [DONE]\n\n');
  }

  onClose(listener: () => void): void {
    onClientGone(this.reply, listener);
  }
}

/**
 * Calls `listener` once the client has gone before the response finished, including when it went before this was
 * called (a 'close' event that already fired would otherwise be missed).
 */
export function onClientGone(reply: FastifyReply, listener: () => void): void {
  const raw = reply.raw;
  if (reply.request.raw.socket?.destroyed && !raw.writableFinished) {
    listener();
    return;
  }
  raw.on('close', () => {
    if (!raw.writableFinished) listener();
  });
}
