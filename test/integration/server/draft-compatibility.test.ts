// A draft must share the target's tokenizer: a different vocabulary or vocabulary size is refused at start-up with
// an error that names --draft.
import { beforeAll, describe, expect, it } from 'vitest';
import { copyFileSync } from 'node:fs';
import { join } from 'node:path';
import { convertLlama2c } from '../../../src/forge/forge.ts';
import { loadServedModel } from '../../../src/server/app.ts';
import { DEFAULTS } from '../../../src/server/config.ts';
import { Metrics } from '../../../src/server/metrics.ts';
import { storiesModel, tinyModel } from '../../helpers/model-fixtures.ts';
import { scratchDir, requireSharedModels, stories } from '../../helpers/shared-models.ts';

requireSharedModels('draft compatibility');

const load = (target: string, draft: string) => loadServedModel({ ...DEFAULTS, target, draft, engineThread: 'main' }, new Metrics(), () => {});

describe('draft compatibility', () => {
  // Built in beforeAll: a describe body runs at collection even when the suite is skipped (no ../shared).
  let target: string;
  beforeAll(() => {
    target = storiesModel();
  });

  it('refuses aidreams260K (its own tok512 vocabulary) as a draft for stories260K', async () => {
    const aidreams = join(scratchDir('aidreams'), 'aidreams260K');
    convertLlama2c(stories.aidreams, stories.aidreamsTokenizer, aidreams);
    await expect(load(target, aidreams)).rejects.toThrow(/--draft .*aidreams260K: its tokenizer differs from the target's/);
  });

  it('refuses a draft with the same tokenizer but a different vocabulary size', async () => {
    const draft = tinyModel({ vocabSize: 600 });
    for (const f of ['tokenizer.json', 'tokenizer_config.json']) copyFileSync(join(target, f), join(draft, f));
    await expect(load(target, draft)).rejects.toThrow(/--draft .*: vocabulary size 600 differs from the target's 512/);
  });
});
