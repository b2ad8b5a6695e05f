// Bad input to the forge CLI: one clear line on stderr, a non-zero exit, and no half-written folder.
import { describe, expect, it } from 'vitest';
import { existsSync, readdirSync, writeFileSync, mkdirSync, readFileSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { specserve } from '../../helpers/cli.ts';
import { scratchDir, requireSharedModels, stories } from '../../helpers/shared-models.ts';

requireSharedModels('CLI errors on real checkpoints');

function expectCleanFailure(r: ReturnType<typeof specserve>, message: RegExp, out?: string) {
  expect(r.status).not.toBe(0);
  expect(r.stderr.trim().split('\n')).toHaveLength(1);
  expect(r.stderr).toMatch(message);
  if (out) {
    expect(existsSync(out)).toBe(false);
    expect(readdirSync(dirname(out)).filter((f) => f.includes('partial'))).toEqual([]);
  }
}

describe('forge CLI errors', () => {
  const work = scratchDir('cli');

  it('builds a tiny random model quickly, then refuses to overwrite it', () => {
    const out = join(work, 'tiny');
    const r = specserve('build', 'random', '--out', out, '--preset', 'tiny', '--seed', '3');
    expect(r.status).toBe(0);
    expect(existsSync(join(out, 'onnx/model.onnx'))).toBe(true);
    expectCleanFailure(specserve('build', 'random', '--out', out), /already exists/);
  });

  it('refuses an unknown dtype and leaves the folder unchanged', () => {
    const out = join(work, 'tiny-dtype');
    expect(specserve('build', 'random', '--out', out).status).toBe(0);
    expectCleanFailure(specserve('quantize', out, '--dtype', 'int3'), /unknown --dtype "int3"/);
    expect(readdirSync(join(out, 'onnx'))).toEqual(['model.onnx']);
  });

  it('refuses a file with a wrong header', () => {
    const bad = join(work, 'garbage.bin');
    writeFileSync(bad, Buffer.from('this is not a checkpoint at all, just text padding padding'));
    const out = join(work, 'from-garbage');
    expectCleanFailure(specserve('convert', 'llama2c', bad, '--tokenizer', bad, '--out', out), /not a llama2.c checkpoint/, out);
  });

  it('refuses a truncated checkpoint and a mismatched tokenizer', () => {
    const truncated = join(work, 'truncated.bin');
    writeFileSync(truncated, readFileSync(stories.checkpoint).subarray(0, 100_000));
    const out = join(work, 'from-truncated');
    expectCleanFailure(specserve('convert', 'llama2c', truncated, '--tokenizer', stories.tokenizer, '--out', out), /truncated/, out);

    const wrongVocab = join(work, 'short-tok.bin');
    writeFileSync(wrongVocab, readFileSync(stories.tokenizer).subarray(0, 2000));
    const out2 = join(work, 'from-wrong-tok');
    expectCleanFailure(specserve('convert', 'llama2c', stories.checkpoint, '--tokenizer', wrongVocab, '--out', out2),
      /tokenizer (truncated|has \d+ tokens)|bad length/, out2);
  });

  it('rejects unknown commands and flags with usage', () => {
    expect(specserve('frobnicate').status).toBe(2);
    expectCleanFailure(specserve('build', 'random', '--out', join(work, 'x'), '--hidden', 'many'), /--hidden must be an integer/);
    mkdirSync(join(work, 'empty'), { recursive: true });
    expectCleanFailure(specserve('derive-draft', join(work, 'empty'), '--layers', '1', '--out', join(work, 'd')), /config.json not found/);
  });
});
