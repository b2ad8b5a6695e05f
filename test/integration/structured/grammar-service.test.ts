// The grammar service on real XGrammar workers (stories260K's vocabulary): masks along a draft are the masks of its
// tokens committed one by one; a refused grammar gets XGrammar's reason and harms nothing after it; a new grammar
// compiles on a worker without running matchers; a dead worker fails its own matchers clearly.
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { TextTokenizer } from '../../../src/runtime/tokenizer.ts';
import { GrammarService, grammarVocabulary, type GrammarVocabulary } from '../../../src/runtime/structured/grammar-service.ts';
import { GrammarBusyError, GrammarError, type GrammarSpec } from '../../../src/runtime/structured/grammar-spec.ts';
import { allows } from '../../../src/runtime/structured/token-bitmask.ts';
import { storiesModel } from '../../helpers/model-fixtures.ts';
import { requireSharedModels } from '../../helpers/shared-models.ts';

requireSharedModels('the grammar service on stories260K');

const EOS = 2;
const SCHEMA: GrammarSpec = { type: 'json', schema: { type: 'object', properties: { a: { type: 'integer', minimum: 0, maximum: 99 } }, required: ['a'], additionalProperties: false } };

describe('grammar service', () => {
  let tokenizer: TextTokenizer;
  let vocabulary: GrammarVocabulary;
  let service: GrammarService;
  beforeAll(() => {
    tokenizer = TextTokenizer.load(storiesModel());
    vocabulary = grammarVocabulary(tokenizer, 512, [EOS]);
  });
  afterEach(() => service?.close());

  it('masks along a draft equal the masks of its tokens committed one at a time; a refused token ends the run', async () => {
    service = new GrammarService(vocabulary);
    // Byte tokens (<0x7B> is id 0x7B + 3), so that the draft spells exactly the text, whatever the merges.
    expect(tokenizer.idToToken(3)).toBe('<0x00>');
    const bytes = (text: string) => [...Buffer.from(text)].map((b) => b + 3);
    const tokens = bytes('{"a": 42}');
    const drafted = service.open(SCHEMA);
    const stepwise = service.open(SCHEMA);
    await Promise.all([drafted.ready, stepwise.ready]);
    const along = await drafted.masksAlong([...tokens, EOS]);
    expect(along.kept).toBe(tokens.length + 1); // the stop token is kept, and ends the run
    for (let j = 0; j <= tokens.length; j++) {
      const { masks, kept } = await stepwise.masksAlong([]);
      expect(kept).toBe(0);
      expect(Array.from(masks[0])).toEqual(Array.from(along.masks[j]));
      if (j < tokens.length) stepwise.commit([tokens[j]]);
    }
    expect(allows(along.masks[tokens.length], EOS)).toBe(true); // the document is complete: it may end
    expect(Array.from(along.masks[tokens.length + 1])).toEqual(Array.from(new Int32Array(16).fill(0).map((_, w) => (w === 0 ? 1 << EOS : 0))));
    // A token the schema refuses ends the run there; the masks before it are the same (asked again or remembered).
    const wrong = bytes('{"b"');
    const cut = await drafted.masksAlong(wrong);
    const refused = wrong.findIndex((t, j) => !allows(cut.masks[j] ?? new Int32Array(16), t));
    expect(cut.kept).toBe(refused);
    expect(cut.masks.length).toBe(refused + 1);
    expect(Array.from(cut.masks[0])).toEqual(Array.from(along.masks[0]));
    drafted.close();
    stepwise.close();
  });

  it('a grammar XGrammar refuses is a GrammarError with its reason; grammars after it compile and serve', async () => {
    service = new GrammarService(vocabulary);
    const refusals: [GrammarSpec, RegExp][] = [
      [{ type: 'json', schema: { type: 'strin' } }, /Unsupported type "strin"/],
      [{ type: 'regex', pattern: '[0-9' }, /Unclosed/],
      [{ type: 'grammar', ebnf: 'root ::= "a" | ' }, /EBNF parser error/],
      [{ type: 'json', schema: { $ref: '#/$defs/nope' } }, /\$defs/],
    ];
    for (const [spec, reason] of refusals) {
      const err = await service.prepare(spec).then(() => null, (e: unknown) => e);
      expect(err, JSON.stringify(spec)).toBeInstanceOf(GrammarError);
      expect((err as Error).message).toMatch(reason);
    }
    const choice = service.open({ type: 'choice', choices: ['yes', 'no'] });
    await choice.ready;
    const { masks } = await choice.masksAlong([]);
    const text = (t: number) => new TextDecoder().decode(tokenizer.tokenBytes()[t] ?? new Uint8Array());
    const allowed = Array.from({ length: 512 }, (_, t) => t).filter((t) => allows(masks[0], t)).map(text);
    expect(allowed.length).toBeGreaterThan(0);
    expect(allowed.every((p) => p.length > 0 && ('yes'.startsWith(p) || 'no'.startsWith(p)))).toBe(true);
    choice.close();
  });

  it('a flood of new grammars: beyond 32 waiting for validation, the rest are deferred (busy), not queued', async () => {
    service = new GrammarService(vocabulary);
    const settled = await Promise.allSettled(Array.from({ length: 40 }, (_, i) => service.prepare({ type: 'choice', choices: [`c${i}`] })));
    const busy = settled.filter((r) => r.status === 'rejected' && (r.reason as Error) instanceof GrammarBusyError);
    expect(busy.length).toBe(8);
    expect(settled.filter((r) => r.status === 'fulfilled').length).toBe(32);
    await service.prepare({ type: 'choice', choices: ['c39'] }); // taken once the flood has passed
  });

  it('a new grammar compiles on a worker without open matchers; with one worker, on that one', async () => {
    service = new GrammarService(vocabulary, { workers: 2 });
    const running = service.open(SCHEMA);
    await running.ready;
    const other: GrammarSpec = { type: 'regex', pattern: '[a-z]+' };
    await service.prepare(other);
    expect(service.placement(other)).not.toBe(service.placement(SCHEMA));
    // The running matcher is served all along (its worker compiled nothing else).
    expect((await running.masksAlong([])).kept).toBe(0);
    running.close();
    await service.close();
    service = new GrammarService(vocabulary, { workers: 1 });
    const one = service.open(SCHEMA);
    await one.ready;
    await service.prepare(other);
    expect(service.placement(other)).toBe(service.placement(SCHEMA));
    one.close();
  });

  it('a dead worker fails its own matchers with a clear error; the grammar compiles again elsewhere', async () => {
    service = new GrammarService(vocabulary);
    const matcher = service.open(SCHEMA);
    await matcher.ready;
    await service.stopWorker(service.placement(SCHEMA)!);
    await expect(matcher.masksAlong([])).rejects.toThrow(/grammar worker stopped/);
    const again = service.open(SCHEMA);
    await again.ready;
    expect((await again.masksAlong([])).kept).toBe(0);
    again.close();
  });
});
