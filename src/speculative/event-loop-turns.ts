// The engine loop's turns of the event loop. The loop must let I/O in between steps (new requests, cancellations,
// health checks), but a turn costs tens of microseconds, much of a small model's step time beyond its pass
// (bench:overhead). Passes on onnxruntime-node's public sessions take a turn each (it runs them from a setImmediate);
// direct ones (runtime/ort-session.ts) take none. So the loop yields only once YIELD_AFTER_MS have gone by without a
// turn; a marker immediate tells whether a step had one (docs/design.md, "The engine").

/** Longest stretch of steps without a turn: a newcomer or a cancellation waits at most this (and a step). */
const YIELD_AFTER_MS = 2;

export class EventLoopTurns {
  private marked = false;
  private turned = false;
  private lastTurn = performance.now();

  /** Before a step: a marker that tells, after it, whether the step took a turn. */
  beforeStep(): void {
    if (this.marked) return;
    this.marked = true;
    setImmediate(() => {
      this.marked = false;
      this.turned = true;
    });
  }

  /** After a step: takes a turn where none came for YIELD_AFTER_MS. */
  async afterStep(): Promise<void> {
    const now = performance.now();
    if (this.turned) {
      this.turned = false;
      this.lastTurn = now;
    } else if (now - this.lastTurn >= YIELD_AFTER_MS) {
      await new Promise((r) => setImmediate(r));
      this.turned = false;
      this.lastTurn = performance.now();
    }
  }
}
