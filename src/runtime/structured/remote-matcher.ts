// One constrained sequence's matcher, living in its grammar's worker (grammar-worker.ts). After each commit the worker
// computes the mask at the new position at once and sends it unasked, so the engine's next step finds it (or waits
// for it) without a request of its own; masks further along a draft come in one message. Masks are remembered until
// the next commit: a draft model asks for them position by position while drafting, and verification again.
import type { SequenceConstraint } from './constraint.ts';
import type { GrammarPush, GrammarThread } from './grammar-thread.ts';
import { allows } from './token-bitmask.ts';

export class RemoteMatcher implements SequenceConstraint {
  /** The masks along the last draft asked for (masks[0]: after the committed tokens), valid until the next commit. */
  private memoDraft: number[] = [];
  private memoMasks: Int32Array[] = [];
  /** Tokens committed: the worker's pushes carry the count they follow. */
  private version = 0;
  /** Who waits for the pushed mask of the current version. */
  private waiter: { resolve: () => void; reject: (e: Error) => void } | null = null;
  private pushError: Error | null = null;
  private closed = false;

  constructor(
    private readonly id: number,
    readonly ready: Promise<void>,
    private readonly thread: () => GrammarThread | null,
    private readonly stops: Set<number>,
    private readonly stopsOnly: Int32Array,
  ) {}

  async masksAlong(draft: number[]): Promise<{ masks: Int32Array[]; kept: number }> {
    const thread = this.thread();
    if (!thread || this.closed) throw new Error('structured output: the matcher is not open');
    if (this.memoMasks.length === 0) await this.pushed();
    let common = 0;
    while (common < draft.length && common < this.memoDraft.length && draft[common] === this.memoDraft[common]) common++;
    const masks = this.memoMasks.slice(0, common + 1);
    for (let j = 0; j < masks.length; j++) {
      const end = this.walk(draft, masks, j);
      if (end) return end;
    }
    const version = this.version;
    const reply = await thread.request({ op: 'masks', matcher: this.id, draft, from: masks.length });
    masks.push(...reply.masks!);
    const kept = reply.kept!;
    if (masks.length === kept) masks.push(this.stopsOnly); // the draft's last kept token is a stop token
    if (version === this.version) {
      this.memoDraft = draft.slice(0, kept);
      this.memoMasks = masks.slice(0, kept + 1);
    }
    return { masks: masks.slice(0, kept + 1), kept };
  }

  /** Resolves once the worker's mask after the committed tokens is here. */
  private pushed(): Promise<void> {
    if (this.pushError) return Promise.reject(this.pushError);
    return new Promise((resolve, reject) => (this.waiter = { resolve, reject }));
  }

  /** Where the known mask at position j ends the draft's run: the result; else null. */
  private walk(draft: number[], masks: Int32Array[], j: number): { masks: Int32Array[]; kept: number } | null {
    if (j === draft.length || !allows(masks[j], draft[j])) return { masks: masks.slice(0, j + 1), kept: j };
    if (this.stops.has(draft[j])) return { masks: [...masks.slice(0, j + 1), this.stopsOnly], kept: j + 1 };
    return null;
  }

  commit(tokens: number[]): void {
    this.version += tokens.length;
    this.memoDraft = [];
    this.memoMasks = [];
    this.thread()?.send({ op: 'accept', matcher: this.id, tokens, version: this.version });
  }

  /** The worker's mask after the committed tokens (or why there is none). */
  onPush(push: GrammarPush | Error): void {
    if (push instanceof Error) this.pushError = push; // its worker died
    else if (push.version !== this.version) return; // a commit since: another push follows
    else if ('error' in push) this.pushError = new Error(`structured output: ${push.error}`);
    else this.memoMasks = [push.mask];
    const waiter = this.waiter;
    this.waiter = null;
    if (this.pushError) waiter?.reject(this.pushError);
    else waiter?.resolve();
  }

  isStop(token: number): boolean {
    return this.stops.has(token);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    void this.ready.then(() => {
      const thread = this.thread()!;
      thread.openMatchers--;
      thread.pushes.delete(this.id);
      thread.send({ op: 'close', matcher: this.id });
    }, () => {});
  }
}
