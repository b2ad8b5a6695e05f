// Server-sent events as OpenAI streams them: `data: {json}\n\n` chunks, then `data: [DONE]`.
import type { FastifyReply } from 'fastify';

/** Bytes of frames held for a client that reads slower than tokens come, by default, before it is cut off. */
export const DEFAULT_STREAM_BUFFER_BYTES = 4 * 1024 * 1024;

export class SseWriter {
  private closed = false;
  /** Frames waiting for the socket to drain (the client reads slower than the engine generates). */
  private readonly pending: string[] = [];
  private pendingBytes = 0;
  private ending = false;

  /** `limit`: bytes held for a slow reader before the connection is closed (its request is then cancelled, through
   * onClose, and its KV cache freed): memory per stream stays bounded whatever the client does. */
  constructor(private readonly reply: FastifyReply, private readonly limit = DEFAULT_STREAM_BUFFER_BYTES) {
    reply.hijack();
    reply.raw.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
    });
    reply.raw.on('close', () => (this.closed = true));
    reply.raw.on('drain', () => this.flush());
  }

  get isClosed(): boolean {
    return this.closed || this.reply.raw.destroyed;
  }

  send(data: unknown): void {
    this.write(`data: ${JSON.stringify(data)}\n\n`);
  }

  end(): void {
    if (this.isClosed) return;
    this.ending = true;
    if (this.pending.length === 0) this.reply.raw.end('data: [DONE]\n\n');
    else this.write('data: [DONE]\n\n');
  }

  onClose(listener: () => void): void {
    onClientGone(this.reply, listener);
  }

  private write(frame: string): void {
    if (this.isClosed) return;
    // write() takes every frame, but returns false once the socket's buffer is full: from then on frames wait here,
    // counted, until 'drain'.
    if (this.pending.length === 0 && !this.reply.raw.writableNeedDrain) {
      this.reply.raw.write(frame);
      return;
    }
    this.pending.push(frame);
    this.pendingBytes += frame.length;
    if (this.pendingBytes > this.limit) {
      this.pending.length = 0;
      this.pendingBytes = 0;
      this.reply.raw.destroy(); // the client is not reading: cut it off ('close' cancels its request)
    }
  }

  private flush(): void {
    while (this.pending.length > 0 && !this.isClosed) {
      const frame = this.pending.shift()!;
      this.pendingBytes -= frame.length;
      const last = this.pending.length === 0 && this.ending && frame === 'data: [DONE]\n\n';
      if (last) {
        this.reply.raw.end(frame);
        return;
      }
      if (!this.reply.raw.write(frame)) return;
    }
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
