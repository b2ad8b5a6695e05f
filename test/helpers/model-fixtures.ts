// Model folders built by the forge for tests: a tiny random Llama (always available) and the converted stories260K
// (when ../shared/models is present). Built once per test file into a temporary folder.
import { join } from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import { Decoder } from '../../src/runtime/decoder.ts';
import { TextTokenizer } from '../../src/runtime/tokenizer.ts';
import { buildRandomModel, convertLlama2c, deriveDraft, quantizeFolder, type RandomModelOptions } from '../../src/forge/forge.ts';
import { scratchDir, stories } from './shared-models.ts';

export function tinyModel(options: RandomModelOptions = {}, dtypes: ('fp16' | 'int8')[] = []): string {
  const dir = join(scratchDir('tiny'), 'model');
  buildRandomModel(dir, { preset: 'tiny', ...options });
  for (const d of dtypes) quantizeFolder(dir, d);
  return dir;
}

export function storiesModel(dtypes: ('fp16' | 'int8')[] = []): string {
  const dir = join(scratchDir('stories'), 'stories260K');
  convertLlama2c(stories.checkpoint, stories.tokenizer, dir);
  for (const d of dtypes) quantizeFolder(dir, d);
  return dir;
}

export function storiesDraftModel(): string {
  const dir = join(scratchDir('stories-draft'), 'stories260K-draft');
  convertLlama2c(stories.draftCheckpoint, stories.tokenizer, dir);
  return dir;
}

export function earlyExitDraft(target: string, layers: number): string {
  const dir = join(scratchDir('early-exit'), 'draft');
  deriveDraft(target, layers, dir);
  return dir;
}

/** Opens stories260K and its distilled draft for the describe block it is called in (closed after it); `use` gets
 * them once open. */
export function useStoriesPair(use: (pair: { target: Decoder; draft: Decoder; tokenizer: TextTokenizer }) => void): void {
  let pair: { target: Decoder; draft: Decoder; tokenizer: TextTokenizer } | null = null;
  beforeAll(async () => {
    pair = { target: await Decoder.open(storiesModel()), draft: await Decoder.open(storiesDraftModel()), tokenizer: TextTokenizer.load(storiesModel()) };
    use(pair);
  });
  afterAll(async () => {
    await pair?.target.close();
    await pair?.draft.close();
  });
}
