// A grammar worker thread: XGrammar's compiler and matchers for the grammars placed on it (grammar-service.ts), so
// that a compile (up to seconds at a large vocabulary, one synchronous WebAssembly call) never stops the engine's
// thread. Messages are handled strictly in order. A `validate` worker compiles against a tiny vocabulary only, to
// learn whether a grammar compiles at all: XGrammar reports a bad grammar by aborting its WebAssembly instance, which
// is not to be trusted afterwards, so the service replaces a validator after each refusal, and serving workers only
// ever compile what a validator accepted.
import { parentPort, workerData } from 'node:worker_threads';
import { compileGrammar, type GrammarSpec } from './grammar-spec.ts';
import { loadXGrammar, type CompiledGrammar, type GrammarMatcher } from './xgrammar.ts';

export interface GrammarWorkerData {
  vocab: string[];
  vocabType: 'byte_fallback' | 'byte_level' | 'raw';
  addPrefixSpace: boolean;
  vocabSize: number;
  stopTokenIds: number[];
}

export type ToGrammarWorker =
  | { op: 'compile'; req: number; key: string; spec: GrammarSpec }
  | { op: 'forget'; key: string }
  | { op: 'open'; matcher: number; key: string }
  | { op: 'accept'; matcher: number; tokens: number[]; version: number }
  | { op: 'masks'; req: number; matcher: number; draft: number[]; from: number }
  | { op: 'close'; matcher: number };

export type FromGrammarWorker =
  | { req: number; ok: true; masks?: Int32Array[]; kept?: number }
  | { req: number; ok: false; error: string }
  /** A matcher's next mask, computed as soon as its tokens were committed (their count: `version`), unasked; or why
   * there is none. */
  | { push: number; version: number; mask: Int32Array }
  | { push: number; version: number; error: string };

const port = parentPort!;
const data = workerData as GrammarWorkerData;
const xg = loadXGrammar();

// XGrammar reports a refused grammar on stderr ("[FATAL] file.cc:123: message") just before it aborts; the message is
// the reason the client needs.
let lastFatal = '';
const printError = console.error;
console.error = (...args: unknown[]) => {
  const line = args.map(String).join(' ');
  const fatal = /^\[FATAL\] \S+:\d+: (?:Check failed: \(.*?\) is false: )?([\s\S]*)$/.exec(line);
  if (fatal) lastFatal = fatal[1].trim();
  else if (line !== 'Aborted()') printError(...args);
};

const info = await xg.TokenizerInfo.createTokenizerInfo(data.vocab, data.vocabType, data.addPrefixSpace, data.vocabSize, data.stopTokenIds);
// The service caches compiled grammars by their source; XGrammar's own cache would only hold them twice.
const compiler = await xg.GrammarCompiler.createGrammarCompiler(info, false);
const compiled = new Map<string, CompiledGrammar>();
/** Each matcher, and its mask at the committed position once computed (reused until the next commit). */
const matchers = new Map<number, { matcher: GrammarMatcher | null; error?: string; next?: Int32Array }>();
const stops = new Set(data.stopTokenIds);

async function handle(m: ToGrammarWorker): Promise<void> {
  switch (m.op) {
    case 'compile': {
      try {
        lastFatal = '';
        compiled.set(m.key, await compileGrammar(compiler, m.spec, xg.Testings._jsonSchemaToEBNF));
        port.postMessage({ req: m.req, ok: true } satisfies FromGrammarWorker);
      } catch (err) {
        port.postMessage({ req: m.req, ok: false, error: lastFatal || String((err as Error)?.message ?? err) } satisfies FromGrammarWorker);
      }
      return;
    }
    case 'forget':
      compiled.get(m.key)?.dispose();
      compiled.delete(m.key);
      return;
    case 'open': {
      const grammar = compiled.get(m.key);
      if (!grammar) {
        matchers.set(m.matcher, { matcher: null, error: 'its grammar is no longer compiled' });
        port.postMessage({ push: m.matcher, version: 0, error: 'its grammar is no longer compiled' } satisfies FromGrammarWorker);
        return;
      }
      const entry: { matcher: GrammarMatcher; next?: Int32Array } = { matcher: await xg.GrammarMatcher.createGrammarMatcher(grammar, data.stopTokenIds) };
      matchers.set(m.matcher, entry);
      await pushNext(m.matcher, entry.matcher, entry, 0);
      return;
    }
    case 'accept': {
      const entry = matchers.get(m.matcher);
      if (!entry?.matcher || entry.error) {
        port.postMessage({ push: m.matcher, version: m.version, error: entry?.error ?? 'no matcher' } satisfies FromGrammarWorker);
        return;
      }
      entry.next = undefined;
      for (const token of m.tokens) {
        if (stops.has(token)) return; // the document ended: no mask follows
        if (!entry.matcher.acceptToken(token)) {
          entry.error = `token ${token} was committed but the grammar refuses it`;
          port.postMessage({ push: m.matcher, version: m.version, error: entry.error } satisfies FromGrammarWorker);
          return;
        }
      }
      await pushNext(m.matcher, entry.matcher, entry, m.version);
      return;
    }
    case 'masks': {
      const entry = matchers.get(m.matcher);
      if (!entry?.matcher || entry.error) {
        port.postMessage({ req: m.req, ok: false, error: `structured output: ${entry?.error ?? 'no matcher'}` } satisfies FromGrammarWorker);
        return;
      }
      const reply = await masksAlong(entry.matcher, m, entry.next);
      port.postMessage(reply);
      return;
    }
    case 'close':
      matchers.get(m.matcher)?.matcher?.dispose();
      matchers.delete(m.matcher);
  }
}

/** Computes the mask after the committed tokens at once and sends it unasked: the engine's next step needs it, and
 * gets it while its own pass runs rather than after a round trip. */
async function pushNext(id: number, matcher: GrammarMatcher, entry: { next?: Int32Array }, version: number): Promise<void> {
  entry.next = await matcher.getNextTokenBitmask();
  port.postMessage({ push: id, version, mask: entry.next } satisfies FromGrammarWorker);
}

/** Masks from position `from` along the draft (the service knows the ones before), up to the first token the grammar
 * refuses or a stop token; the matcher ends where it began. */
async function masksAlong(matcher: GrammarMatcher, m: { req: number; draft: number[]; from: number }, next: Int32Array | undefined): Promise<FromGrammarWorker & { masks: Int32Array[] }> {
  let accepted = 0;
  const masks: Int32Array[] = [];
  let kept = m.draft.length;
  try {
    for (; accepted < m.from; accepted++) {
      if (!matcher.acceptToken(m.draft[accepted])) throw new Error(`draft token ${m.draft[accepted]} refused where its mask allowed it`);
    }
    for (let j = m.from; ; j++) {
      const mask = j === 0 && next ? next : await matcher.getNextTokenBitmask();
      masks.push(mask);
      if (j === m.draft.length) break;
      const token = m.draft[j];
      if (((mask[token >> 5] >>> (token & 31)) & 1) === 0) {
        kept = j;
        break;
      }
      if (stops.has(token)) {
        kept = j + 1;
        break;
      }
      matcher.acceptToken(token);
      accepted++;
    }
  } finally {
    if (accepted > 0) matcher.rollBack(accepted);
  }
  return { req: m.req, ok: true, masks, kept };
}

let queue = Promise.resolve();
port.on('message', (m: ToGrammarWorker) => {
  queue = queue.then(() => handle(m)).catch((err) => {
    if ('req' in m) port.postMessage({ req: m.req, ok: false, error: String((err as Error)?.message ?? err) } satisfies FromGrammarWorker);
  });
});
port.postMessage({ req: 0, ok: true } satisfies FromGrammarWorker);
