// The real trained stories260K converted by the CLI reproduces PROVENANCE.md's greedy ids in fp32, and its fp16 and
// int8 variants agree with fp32; derive-draft makes a runnable early-exit draft.
import { beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { readFileSync } from 'node:fs';
import { Tokenizer } from '@huggingface/tokenizers';
import { specserve } from '../../helpers/cli.ts';
import { argmax, ortGreedy, ortTeacherForced } from '../../helpers/ort-greedy.ts';
import { scratchDir, requireSharedModels, stories, STORIES_ORACLE_IDS } from '../../helpers/shared-models.ts';

requireSharedModels('stories260K conversion');

describe('stories260K through the forge CLI', () => {
  let dir: string;
  let fp32: Awaited<ReturnType<typeof ortGreedy>>;

  beforeAll(async () => {
    dir = join(scratchDir('forge'), 'stories260K');
    const convert = specserve('convert', 'llama2c', stories.checkpoint, '--tokenizer', stories.tokenizer, '--out', dir);
    expect(convert.stderr).toBe('');
    expect(convert.status).toBe(0);
    for (const dtype of ['fp16', 'int8']) expect(specserve('quantize', dir, '--dtype', dtype).status).toBe(0);
    fp32 = await ortGreedy(join(dir, 'onnx/model.onnx'), [1], 256);
  });

  it('fp32 greedy from BOS reproduces the 64 oracle ids and the documented text', () => {
    expect(fp32.ids.slice(0, 64)).toEqual(STORIES_ORACLE_IDS);
    const tokenizer = new Tokenizer(JSON.parse(readFileSync(join(dir, 'tokenizer.json'), 'utf8')),
      JSON.parse(readFileSync(join(dir, 'tokenizer_config.json'), 'utf8')));
    expect(tokenizer.decode(fp32.ids.slice(0, 64), { skip_special_tokens: true }))
      .toMatch(/^Once upon a time, there was a little girl named Lily\. She loved to play outside in the park\./);
  });

  it.each(['fp16', 'int8'])('%s agrees with fp32 over 256 greedy tokens (at least 95 percent)', async (dtype) => {
    const file = join(dir, `onnx/model_${dtype}.onnx`);
    // Teacher-forced on fp32's greedy ids, so that one near-tie flip does not derail everything after it:
    // at each of the 256 positions, does the variant pick the same next token as fp32 given the same prefix?
    const logits = await ortTeacherForced(file, [1, ...fp32.ids.slice(0, 255)]);
    let agree = 0;
    let maxErr = 0;
    logits.forEach((row, i) => {
      if (argmax(row) === fp32.ids[i]) agree++;
      for (let v = 0; v < row.length; v++) maxErr = Math.max(maxErr, Math.abs(row[v] - fp32.logits[i][v]));
    });
    const free = await ortGreedy(file, [1], 256);
    const firstDivergence = free.ids.findIndex((id, i) => id !== fp32.ids[i]);
    console.log(`[forge] stories260K ${dtype} vs fp32: teacher-forced greedy agreement ${agree}/256, ` +
      `max |logit error| ${maxErr.toExponential(2)}, free-running greedy identical for ${firstDivergence < 0 ? 256 : firstDivergence} tokens`);
    expect(agree / 256).toBeGreaterThanOrEqual(0.95);
    expect(maxErr).toBeGreaterThan(0); // the variant really differs from fp32
  });

  it('derive-draft writes a runnable early-exit draft with the target tokenizer', async () => {
    const out = join(scratchDir('draft'), 'draft');
    const r = specserve('derive-draft', dir, '--layers', '2', '--out', out);
    expect(r.status).toBe(0);
    const config = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8'));
    expect(config.num_hidden_layers).toBe(2);
    expect(readFileSync(join(out, 'tokenizer.json'), 'utf8')).toBe(readFileSync(join(dir, 'tokenizer.json'), 'utf8'));
    const draft = await ortGreedy(join(out, 'onnx/model.onnx'), [1], 16);
    expect(draft.ids).toHaveLength(16);
    expect(draft.ids.every((id) => id >= 0 && id < 512)).toBe(true);
  });

  it('converts the distilled draft, which starts like its target', async () => {
    const out = join(scratchDir('draft'), 'stories260K-draft');
    expect(specserve('convert', 'llama2c', stories.draftCheckpoint, '--tokenizer', stories.tokenizer, '--out', out).status).toBe(0);
    // PROVENANCE.md of stories260K-draft: its greedy ids from BOS share the first 20 with the target.
    const draft = await ortGreedy(join(out, 'onnx/model.onnx'), [1], 20);
    expect(draft.ids).toEqual(STORIES_ORACLE_IDS.slice(0, 20));
  });
});
