// Structured output through the real engine and XGrammar's grammar workers: every completed output parses and
// validates against its schema (ajv) for random schemas (pattern, anyOf, $ref, minimum, ...) and seeds, on stories260K
// and on a random model (which never "wants" JSON); regex, choice and EBNF outputs are in their languages; greedy
// output with speculation equals greedy output without it under the same grammar, for each proposer.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Ajv } from 'ajv';
import { Decoder } from '../../../src/runtime/decoder.ts';
import { TextTokenizer } from '../../../src/runtime/tokenizer.ts';
import { Engine } from '../../../src/speculative/engine.ts';
import { DraftModelProposer } from '../../../src/speculative/draft-model-proposer.ts';
import { NgramProposer } from '../../../src/speculative/ngram-proposer.ts';
import { PredictionProposer } from '../../../src/speculative/prediction-proposer.ts';
import { GrammarService, grammarVocabulary } from '../../../src/runtime/structured/grammar-service.ts';
import type { GrammarSpec } from '../../../src/runtime/structured/grammar-spec.ts';
import type { GenerationRequest } from '../../../src/speculative/generation-request.ts';
import type { Proposer } from '../../../src/speculative/proposer.ts';
import { earlyExitDraft, storiesDraftModel, storiesModel, tinyModel } from '../../helpers/model-fixtures.ts';
import { collect } from '../../helpers/engine-run.ts';
import { randomSchema } from '../../helpers/random-schema.ts';
import { requireSharedModels } from '../../helpers/shared-models.ts';

requireSharedModels('constrained decoding on stories260K');

const NUM_SCHEMAS = 24;
const GREEDY = { temperature: 0, topK: 0, topP: 1, minP: 0 };

interface Setup { target: Decoder; tokenizer: TextTokenizer; draft: Decoder; prompt: string }

function engineFor(s: Setup, proposer: Proposer | null, k: number, predictionProposer?: Proposer) {
  const constraints = new GrammarService(grammarVocabulary(s.tokenizer, s.target.vocabSize, s.target.folder.eosTokenIds));
  return new Engine({ target: s.target, tokenizer: s.tokenizer, proposer, predictionProposer, numSpeculativeTokens: k, adaptiveDraftLength: false,
    maxBatch: 16, maxQueue: 1000, constraints });
}

// Grammars other than JSON schemas, with a check of their language.
const OTHER_GRAMMARS: { spec: GrammarSpec; check: (text: string) => boolean }[] = [
  { spec: { type: 'regex', pattern: '[a-z]{2,5}-[0-9]{1,3}' }, check: (t) => /^[a-z]{2,5}-[0-9]{1,3}$/.test(t) },
  { spec: { type: 'choice', choices: ['yes', 'no', 'maybe "so"'] }, check: (t) => ['yes', 'no', 'maybe "so"'].includes(t) },
  { spec: { type: 'grammar', ebnf: 'root ::= "(" item ("," item)* ")"\nitem ::= [0-9]+ | "x"' }, check: (t) => /^\((?:[0-9]+|x)(?:,(?:[0-9]+|x))*\)$/.test(t) },
];

function suite(name: string, setup: () => Promise<Setup>) {
  describe(name, () => {
    let s: Setup;
    beforeAll(async () => {
      s = await setup();
    });
    afterAll(async () => {
      await s.target.close();
      await s.draft.close();
    });

    it(`property: ${NUM_SCHEMAS} random schemas x 2 seeds (greedy and sampled): completed outputs parse and validate`, async () => {
      const ajv = new Ajv({ strict: false });
      const engine = engineFor(s, new DraftModelProposer(s.draft, { target: s.target }), 3);
      const runs = await Promise.all(Array.from({ length: NUM_SCHEMAS }, (_, i) => randomSchema(1000 + i)).flatMap((schema, i) =>
        [0, 0.9].map((temperature) => collect(engine, {
          promptIds: s.tokenizer.encode(s.prompt), maxTokens: 400, stop: [], seed: i, constraint: { type: 'json', schema },
          sampling: { ...GREEDY, temperature },
        }).then((r) => ({ ...r, schema })))));
      await engine.close();
      let completed = 0;
      for (const r of runs) {
        if (r.finishReason !== 'stop') {
          console.log(`[structured] not completed in 400 tokens: ${JSON.stringify(r.schema)}\n  ${JSON.stringify(r.text.slice(0, 300))}`);
          continue;
        }
        completed++;
        const value = JSON.parse(r.text);
        const validate = ajv.compile(r.schema);
        expect(validate(value), `${r.text}\n${JSON.stringify(validate.errors)}\n${JSON.stringify(r.schema)}`).toBe(true);
      }
      console.log(`[structured] ${name}: ${completed}/${runs.length} completed within 400 tokens, all valid`);
      expect(completed).toBeGreaterThanOrEqual(runs.length * 0.8);
    });

    it('json_object mode (XGrammar\'s builtin JSON grammar: an object or an array) and finish_reason length when max_tokens cuts the document', async () => {
      const engine = engineFor(s, null, 0);
      const cut = await collect(engine, { promptIds: s.tokenizer.encode(s.prompt), maxTokens: 3, stop: [], sampling: GREEDY, constraint: { type: 'json' } });
      expect(cut.finishReason).toBe('length');
      expect(cut.text).toMatch(/^[{[]/);
      expect(() => JSON.parse(cut.text)).toThrow();
      const whole = await Promise.all([0, 1, 2].map((seed) => collect(engine, {
        promptIds: s.tokenizer.encode(s.prompt), maxTokens: 300, stop: [], seed, sampling: { ...GREEDY, temperature: 0.8 }, constraint: { type: 'json' },
      })));
      for (const r of whole) if (r.finishReason === 'stop') expect(typeof JSON.parse(r.text)).toBe('object');
      await engine.close();
    });

    it('regex, choice and EBNF grammars: every completed output is in the language, greedy and sampled', async () => {
      const engine = engineFor(s, new DraftModelProposer(s.draft, { target: s.target }), 3);
      const runs = await Promise.all(OTHER_GRAMMARS.flatMap((g) => [0, 0.9, 1.2].flatMap((temperature) => [1, 2].map((seed) => collect(engine, {
        promptIds: s.tokenizer.encode(s.prompt), maxTokens: 60, stop: [], seed, constraint: g.spec, sampling: { ...GREEDY, temperature },
      }).then((r) => ({ ...r, g }))))));
      await engine.close();
      for (const r of runs) {
        if (r.finishReason === 'stop') expect(r.g.check(r.text), `${JSON.stringify(r.text)} for ${JSON.stringify(r.g.spec)}`).toBe(true);
      }
      // Regex and choice languages are finite or end soon: those always complete.
      expect(runs.filter((r) => r.g.spec.type !== 'grammar').every((r) => r.finishReason === 'stop')).toBe(true);
    });

    it('greedy with speculation equals greedy without it under the same grammar, for each proposer', async () => {
      const specs: GrammarSpec[] = [...Array.from({ length: 6 }, (_, i) => ({ type: 'json' as const, schema: randomSchema(2000 + i) })),
        ...OTHER_GRAMMARS.map((g) => g.spec)];
      const requests = (prediction?: number[]): GenerationRequest[] => specs.map((constraint) => ({
        promptIds: s.tokenizer.encode(s.prompt), maxTokens: 120, stop: [], sampling: GREEDY, constraint, prediction,
      }));
      const plainEngine = engineFor(s, null, 0);
      const plain = await Promise.all(requests().map((r) => collect(plainEngine, r)));
      await plainEngine.close();
      const proposers: [string, Proposer | null, Proposer | undefined][] = [
        ['draft', new DraftModelProposer(s.draft, { target: s.target }), undefined], ['ngram', new NgramProposer(), undefined],
        ['prediction', null, new PredictionProposer()],
      ];
      for (const [label, proposer, predictionProposer] of proposers) {
        const engine = engineFor(s, proposer, 4, predictionProposer);
        // Predicted Outputs: predict a wrong-ish document (the first plain output) for every request.
        const reqs = requests(predictionProposer ? s.tokenizer.encode(plain[0].text, false) : undefined);
        const got = await Promise.all(reqs.map((r) => collect(engine, r)));
        await engine.close();
        expect(got.map((g) => g.tokens), label).toEqual(plain.map((p) => p.tokens));
        if (label !== 'ngram') expect(got.reduce((a, g) => a + g.numDrafted, 0), label).toBeGreaterThan(0);
      }
    });
  });
}

describe('stories260K', () => {
  suite('stories260K + distilled draft', async () => {
    const dir = storiesModel();
    return { target: await Decoder.open(dir), tokenizer: TextTokenizer.load(dir), draft: await Decoder.open(storiesDraftModel()), prompt: 'Once upon a time' };
  });
});

suite('random tiny model + early-exit draft', async () => {
  const dir = tinyModel({ seed: 21, numLayers: 3, maxPositionEmbeddings: 1024 });
  return { target: await Decoder.open(dir), tokenizer: TextTokenizer.load(dir), draft: await Decoder.open(earlyExitDraft(dir, 1)), prompt: 'json please' };
});
