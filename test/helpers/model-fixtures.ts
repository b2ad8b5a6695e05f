// Model folders built by the forge for tests: a tiny random Llama (always available) and the converted stories260K
// (when ../shared/models is present). Built once per test file into a temporary folder.
import { join } from 'node:path';
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
