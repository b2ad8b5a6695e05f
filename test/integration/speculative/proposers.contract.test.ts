// Every proposer runs the shared contract (test/contract/proposer.contract.ts) against real models where it has one.
import { afterAll } from 'vitest';
import { Decoder } from '../../../src/runtime/decoder.ts';
import { TextTokenizer } from '../../../src/runtime/tokenizer.ts';
import { DraftModelProposer } from '../../../src/speculative/draft-model-proposer.ts';
import { NgramProposer } from '../../../src/speculative/ngram-proposer.ts';
import { PredictionProposer } from '../../../src/speculative/prediction-proposer.ts';
import { contextFactory, proposerContract } from '../../contract/proposer.contract.ts';
import { earlyExitDraft, tinyModel } from '../../helpers/model-fixtures.ts';

const target = tinyModel({ seed: 31, numLayers: 3 });
const tokenizer = TextTokenizer.load(target);
const prompt = tokenizer.encode('the cat sat on the mat and the cat sat on the');
const decoders: Decoder[] = [];
afterAll(async () => {
  for (const d of decoders) await d.close();
});

proposerContract('draft model (early exit)', {
  make: async () => {
    const d = await Decoder.open(earlyExitDraft(target, 1));
    decoders.push(d);
    return new DraftModelProposer(d);
  },
  context: contextFactory(prompt, prompt.length),
  vocabSize: 512,
  alwaysProposes: true,
});

proposerContract('n-gram', {
  make: () => new NgramProposer(),
  context: contextFactory(prompt, prompt.length),
  vocabSize: 512,
  alwaysProposes: true, // the prompt repeats "the cat sat on the"
});

proposerContract('prediction', {
  make: () => new PredictionProposer(),
  context: contextFactory(prompt, prompt.length, tokenizer.encode(' mat and the dog', false)),
  vocabSize: 512,
  alwaysProposes: true,
});
