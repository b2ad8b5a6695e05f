import { describe, expect, it } from 'vitest';
import { DEFAULTS, parseServerConfig } from '../../../src/server/config.ts';
import { defaultDtype } from '../../../src/server/model-loading.ts';
import { tinyModel } from '../../helpers/model-fixtures.ts';

describe('server configuration', () => {
  it('defaults without flags or environment', () => {
    expect(parseServerConfig([], {})).toEqual(DEFAULTS);
  });

  it('reads flags and, where a flag is absent, the environment', () => {
    const c = parseServerConfig(['--port', '9000', '--draft', 'ngram', '--dtype', 'int8', '--adaptive-draft-length', 'false'],
      { HOST: '0.0.0.0', PORT: '1', SPECSERVE_MAX_BATCH: '4', SPECSERVE_API_KEY: 'k' });
    expect(c).toMatchObject({ port: 9000, host: '0.0.0.0', draft: 'ngram', dtype: 'int8', adaptiveDraftLength: false, maxBatch: 4, apiKey: 'k' });
  });

  it('takes the draft\'s device apart from the target\'s; without it the draft follows --device', () => {
    expect(parseServerConfig(['--device', 'cuda', '--draft-device', 'cpu'], {})).toMatchObject({ device: 'cuda', draftDevice: 'cpu' });
    expect(parseServerConfig([], { SPECSERVE_DRAFT_DEVICE: 'auto' }).draftDevice).toBe('auto');
    expect(parseServerConfig(['--device', 'cuda'], {}).draftDevice).toBeUndefined();
  });

  it('leaves the target dtype to the device unless given: fp16 on CUDA where the folder has it, else fp32', () => {
    expect(parseServerConfig([], {}).dtype).toBeUndefined();
    const withFp16 = tinyModel({}, ['fp16']);
    const without = tinyModel({});
    expect([defaultDtype(withFp16, 'cuda'), defaultDtype(without, 'cuda'), defaultDtype(withFp16, 'cpu'), defaultDtype(withFp16, 'auto')])
      .toEqual(['fp16', 'fp32', 'fp32', 'fp32']);
  });

  it.each([
    [['--port', 'eighty'], {}, /--port \(PORT\): must be a non-negative integer, got "eighty"/],
    [[], { SPECSERVE_DTYPE: 'int3' }, /--dtype \(SPECSERVE_DTYPE\): must be one of fp32, fp16, int8, q8, q4/],
    [['--device', 'tpu'], {}, /--device \(SPECSERVE_DEVICE\): must be one of cpu, cuda, auto/],
    [['--draft-device', 'gpu'], {}, /--draft-device \(SPECSERVE_DRAFT_DEVICE\): must be one of cpu, cuda, auto/],
    [['--max-batch', '0'], {}, /--max-batch/],
    [['--num-speculative-tokens', '40'], {}, /at most 16/],
    [['--engine-thread', 'gpu'], {}, /--engine-thread .*worker or main/],
    [['--public-metrics', 'maybe'], {}, /must be true or false/],
    [['--no-such-flag', '1'], {}, /Unknown option '--no-such-flag'/],
  ])('refuses %j %j naming the option', (argv, env, message) => {
    expect(() => parseServerConfig(argv as string[], env)).toThrow(message);
  });
});
