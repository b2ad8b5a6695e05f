// The built-in default model pair, which the CLI serves when no --target is given: a small random-weight Llama and its early-exit draft, built deterministically by
// the forge into models/ on first start, so that `npm start` works on a fresh machine with no download.
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { buildRandomModel, deriveDraft } from './forge/forge.ts';

export const MODELS_DIR = resolve(import.meta.dirname, '../models');
export const DEMO_TARGET = join(MODELS_DIR, 'specserve-demo');
export const DEMO_DRAFT = join(MODELS_DIR, 'specserve-demo-draft');

// Small enough to build in about a second and to answer fast on two cores; random weights, so its text is noise.
const DEMO_SHAPE = { hiddenSize: 128, intermediateSize: 384, numLayers: 4, numHeads: 4, numKvHeads: 2, vocabSize: 2048, maxPositionEmbeddings: 1024, seed: 1 };

export function ensureDemoPair(log: (message: string) => void): { target: string; draft: string } {
  if (!existsSync(DEMO_TARGET)) {
    log(`building the built-in demo target in ${DEMO_TARGET}`);
    buildRandomModel(DEMO_TARGET, DEMO_SHAPE);
  }
  if (!existsSync(DEMO_DRAFT)) {
    log(`building the built-in demo draft in ${DEMO_DRAFT}`);
    deriveDraft(DEMO_TARGET, 1, DEMO_DRAFT);
  }
  log('serving the built-in DEMO pair: random weights, so its text is noise. Serve a real model with ' +
    '`specserve serve --target DIR --draft DIR` (see README: stories260K, SmolLM2, tinyllamas)');
  return { target: DEMO_TARGET, draft: DEMO_DRAFT };
}
