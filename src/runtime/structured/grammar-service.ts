// Structured output's grammars, off the engine's thread: XGrammar compiles and matches in grammar workers
// (grammar-worker.ts), and each constrained sequence holds a RemoteMatcher that asks its worker for token masks.
//
// - A new grammar is first compiled by a validator against a tiny vocabulary (XGrammar refuses a bad grammar by
//   aborting its WebAssembly instance, so the validator is replaced after each refusal), then on a serving worker:
//   one without open matchers where there is one, else a new one up to `workers`, so that compiling a new schema
//   stalls no stream that is already running.
// - Compiled grammars are cached by their source (grammar-spec.ts grammarKey), at most `maxGrammars`.
// - Masks along a draft come in one message, and the ones a sequence already asked for (its draft's own positions,
//   asked while drafting) are not asked again before its next commit.
import type { TextTokenizer } from '../tokenizer.ts';
import type { ConstraintProvider, SequenceConstraint } from './constraint.ts';
import { checkGrammarSpec, GrammarBusyError, GrammarError, grammarKey, type GrammarSpec } from './grammar-spec.ts';
import { maskOf } from './token-bitmask.ts';
import type { GrammarWorkerData } from './grammar-worker.ts';
import { GrammarThread } from './grammar-thread.ts';
import { RemoteMatcher } from './remote-matcher.ts';

/** The vocabulary as XGrammar takes it (special tokens as empty strings), with the model's logits width. */
export type GrammarVocabulary = GrammarWorkerData;

/** A model's GrammarVocabulary: its tokenizer's pieces over the width of its logits, ending at its stop tokens. */
export function grammarVocabulary(tokenizer: TextTokenizer, vocabSize: number, stopTokenIds: readonly number[]): GrammarVocabulary {
  const { vocab, vocabType, addPrefixSpace } = tokenizer.grammarVocabulary();
  return { vocab: vocab.slice(0, vocabSize), vocabType, addPrefixSpace, vocabSize, stopTokenIds: [...stopTokenIds] };
}

export interface GrammarServiceOptions {
  /** Serving workers at most (default 2). */
  workers?: number;
  /** Compiled grammars kept (default 64). */
  maxGrammars?: number;
  /** A grammar whose validation takes longer is refused (default 20 s). */
  validateTimeoutMs?: number;
}

// New grammars waiting for the validator at most: each refusal costs a worker's restart, so a flood of bad grammars
// would otherwise queue without bound ahead of good ones.
const MAX_PENDING_VALIDATIONS = 32;

// The validator's vocabulary: a stop token and the printable ASCII characters. Whether a grammar compiles does not
// depend on the vocabulary; how long it takes does.
const TINY_VOCABULARY: GrammarVocabulary = {
  vocab: ['', ...Array.from({ length: 95 }, (_, i) => String.fromCharCode(0x20 + i))],
  vocabType: 'raw', addPrefixSpace: false, vocabSize: 96, stopTokenIds: [0],
};


interface Placed {
  thread: GrammarThread;
  ready: Promise<void>;
}

export class GrammarService implements ConstraintProvider {
  private readonly threads: GrammarThread[] = [];
  private validator: GrammarThread | null = null;
  /** Validations run one at a time: a refusal replaces the validator under the next one. */
  private validations: Promise<unknown> = Promise.resolve();
  private readonly validated = new Set<string>();
  private pendingValidations = 0;
  /** Compiled grammars by key, least recently used first. */
  private readonly grammars = new Map<string, Placed>();
  private nextMatcher = 1;
  private readonly stops: Set<number>;
  private readonly stopsOnly: Int32Array;

  constructor(private readonly vocabulary: GrammarVocabulary, private readonly o: GrammarServiceOptions = {}) {
    this.stops = new Set(vocabulary.stopTokenIds);
    this.stopsOnly = maskOf(vocabulary.stopTokenIds, vocabulary.vocabSize);
  }

  prepare(spec: GrammarSpec): Promise<void> {
    const key = grammarKey(spec);
    const placed = this.grammars.get(key);
    if (placed && !placed.thread.dead) {
      this.grammars.delete(key);
      this.grammars.set(key, placed);
      return placed.ready;
    }
    try {
      checkGrammarSpec(spec);
    } catch (err) {
      return Promise.reject(err);
    }
    const thread = this.pickThread();
    thread.compiling++;
    const ready = this.validate(key, spec)
      .then(() => thread.request({ op: 'compile', key, spec }))
      .then(() => undefined)
      .finally(() => thread.compiling--);
    const entry = { thread, ready };
    ready.catch(() => {
      if (this.grammars.get(key) === entry) this.grammars.delete(key);
    });
    this.grammars.set(key, entry);
    this.evict();
    return ready;
  }

  open(spec: GrammarSpec): SequenceConstraint {
    const id = this.nextMatcher++;
    const key = grammarKey(spec);
    let thread: GrammarThread | null = null;
    let matcher!: RemoteMatcher;
    const ready = this.prepare(spec).then(() => {
      thread = this.grammars.get(key)!.thread;
      thread.openMatchers++;
      thread.pushes.set(id, (push) => matcher.onPush(push));
      thread.send({ op: 'open', matcher: id, key });
    });
    matcher = new RemoteMatcher(id, ready, () => thread, this.stops, this.stopsOnly);
    return matcher;
  }

  /** The serving worker a grammar is compiled on (its index), if it is (tests, and what an operator may ask). */
  placement(spec: GrammarSpec): number | undefined {
    const placed = this.grammars.get(grammarKey(spec));
    return placed ? this.threads.indexOf(placed.thread) : undefined;
  }

  /** Stops serving worker `index` as a crash would (tests: what a dead grammar worker does to its requests). */
  async stopWorker(index: number): Promise<void> {
    await this.threads[index]?.terminate();
  }

  async close(): Promise<void> {
    await Promise.all([...this.threads, ...(this.validator ? [this.validator] : [])].map((t) => t.terminate()));
    this.threads.length = 0;
    this.validator = null;
  }

  /** A worker without open matchers or compiles, else a new one, else the least busy. */
  private pickThread(): GrammarThread {
    for (let i = this.threads.length - 1; i >= 0; i--) if (this.threads[i].dead) this.threads.splice(i, 1);
    const idle = this.threads.find((t) => t.openMatchers === 0 && t.compiling === 0);
    if (idle) return idle;
    if (this.threads.length < (this.o.workers ?? 2)) {
      const thread = new GrammarThread(this.vocabulary);
      this.threads.push(thread);
      return thread;
    }
    return this.threads.reduce((a, b) => (b.compiling * 1000 + b.openMatchers < a.compiling * 1000 + a.openMatchers ? b : a));
  }

  private validate(key: string, spec: GrammarSpec): Promise<void> {
    if (this.validated.has(key)) return Promise.resolve();
    if (this.pendingValidations >= MAX_PENDING_VALIDATIONS) {
      return Promise.reject(new GrammarBusyError(`${MAX_PENDING_VALIDATIONS} new grammars are waiting to compile; retry shortly`));
    }
    this.pendingValidations++;
    const run = this.validations.then(async () => {
      const validator = (this.validator ??= new GrammarThread(TINY_VOCABULARY));
      const timeoutMs = this.o.validateTimeoutMs ?? 20_000;
      let timer: NodeJS.Timeout | undefined;
      try {
        await Promise.race([
          validator.request({ op: 'compile', key, spec }),
          new Promise((_, reject) => {
            timer = setTimeout(() => reject(new GrammarError(`the grammar did not compile within ${timeoutMs / 1000} s`)), timeoutMs);
          }),
        ]);
      } catch (err) {
        // A refusal aborted the validator's WebAssembly instance (or it is still compiling): it is replaced.
        this.validator = null;
        void validator.terminate();
        throw err;
      } finally {
        clearTimeout(timer);
      }
      validator.send({ op: 'forget', key });
      this.validated.add(key);
      if (this.validated.size > 4 * (this.o.maxGrammars ?? 64)) this.validated.delete(this.validated.values().next().value!);
    });
    this.validations = run.catch(() => {});
    return run.finally(() => this.pendingValidations--);
  }

  private evict(): void {
    const max = this.o.maxGrammars ?? 64;
    for (const [key, placed] of this.grammars) {
      if (this.grammars.size <= max) break;
      // Matchers keep their own reference to the compiled grammar: forgetting it harms no running sequence.
      this.grammars.delete(key);
      void placed.ready.then(() => placed.thread.send({ op: 'forget', key }), () => {});
    }
  }
}
