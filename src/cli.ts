// `specserve` command line: the forge (build, convert, derive-draft, quantize, widen) and the server (serve).
import { parseArgs } from 'node:util';
import cliProgress from 'cli-progress';
import { buildRandomModel, convertLlama2c, deriveDraft, quantizeFolder, widenModel, FORGE_DTYPES, type ForgeDtype, type Progress } from './forge/forge.ts';
import { parameterCount } from './forge/random-weights.ts';

const USAGE = `usage:
  specserve build random --out DIR [--preset tiny|bench-20m|bench-100m] [--hidden N --layers N --heads N
                         --kv-heads N --intermediate N --vocab N --max-positions N --seed N --untied]
  specserve convert llama2c CHECKPOINT.bin --tokenizer TOK.bin --out DIR
  specserve derive-draft TARGET_DIR --layers N --out DIR
  specserve quantize DIR --dtype fp16|int8
  specserve widen SOURCE --out DIR [--preset wide-100m|wide-1b] [--hidden N --intermediate N --layers N]
                  [--tokenizer TOK.bin] [--dtype fp32,fp16,int8]   (SOURCE: a llama2.c checkpoint or a forge folder)
  specserve serve [options]   (see README)`;

/** A progress bar on a terminal; nothing when output is piped (CI logs stay clean). */
function progressBar(): { progress: Progress; stop: () => void } {
  const bar = new cliProgress.SingleBar({ format: '{stage} [{bar}] {value}/{total}', clearOnComplete: true, stream: process.stderr },
    cliProgress.Presets.shades_classic);
  let started = false;
  return {
    progress: (stage, done, total) => {
      if (!started) {
        bar.start(total, done, { stage });
        started = true;
      }
      bar.setTotal(total);
      bar.update(done, { stage });
    },
    stop: () => started && bar.stop(),
  };
}

function int(value: string | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n)) throw new Error(`--${flag} must be an integer, got "${value}"`);
  return n;
}

function required(value: string | undefined, flag: string): string {
  if (!value) throw new Error(`missing --${flag}`);
  return value;
}

async function forge(args: string[]): Promise<void> {
  const [command, ...rest] = args;
  const { values, positionals } = parseArgs({
    args: rest,
    allowPositionals: true,
    options: {
      out: { type: 'string' }, preset: { type: 'string' }, hidden: { type: 'string' }, layers: { type: 'string' },
      heads: { type: 'string' }, 'kv-heads': { type: 'string' }, intermediate: { type: 'string' }, vocab: { type: 'string' },
      'max-positions': { type: 'string' }, seed: { type: 'string' }, untied: { type: 'boolean' },
      tokenizer: { type: 'string' }, dtype: { type: 'string' },
    },
  });
  const bar = progressBar();
  try {
    switch (command) {
      case 'build': {
        if (positionals[0] !== 'random') throw new Error(`unknown source "${positionals[0] ?? ''}" for build (expected: random)`);
        const config = buildRandomModel(required(values.out, 'out'), {
          preset: values.preset, hiddenSize: int(values.hidden, 'hidden'), numLayers: int(values.layers, 'layers'),
          numHeads: int(values.heads, 'heads'), numKvHeads: int(values['kv-heads'], 'kv-heads'),
          intermediateSize: int(values.intermediate, 'intermediate'), vocabSize: int(values.vocab, 'vocab'),
          maxPositionEmbeddings: int(values['max-positions'], 'max-positions'), seed: int(values.seed, 'seed'),
          tieWordEmbeddings: values.untied ? false : undefined,
        }, bar.progress);
        bar.stop();
        console.log(`wrote ${values.out} (${(parameterCount(config) / 1e6).toFixed(2)}M parameters)`);
        return;
      }
      case 'convert': {
        if (positionals[0] !== 'llama2c') throw new Error(`unknown format "${positionals[0] ?? ''}" for convert (expected: llama2c)`);
        const checkpoint = positionals[1];
        if (!checkpoint) throw new Error('missing CHECKPOINT.bin');
        const config = convertLlama2c(checkpoint, required(values.tokenizer, 'tokenizer'), required(values.out, 'out'), bar.progress);
        bar.stop();
        console.log(`wrote ${values.out} (${config.numLayers} layers, vocab ${config.vocabSize})`);
        return;
      }
      case 'derive-draft': {
        const target = positionals[0];
        if (!target) throw new Error('missing TARGET_DIR');
        const layers = int(required(values.layers, 'layers'), 'layers')!;
        deriveDraft(target, layers, required(values.out, 'out'), bar.progress);
        bar.stop();
        console.log(`wrote ${values.out} (early-exit draft: first ${layers} layers of ${target})`);
        return;
      }
      case 'widen': {
        const source = positionals[0];
        if (!source) throw new Error('missing SOURCE (a llama2.c checkpoint or a model folder)');
        const dtypes = (values.dtype ?? 'fp32').split(',').map((d) => {
          if (!(FORGE_DTYPES as readonly string[]).includes(d)) throw new Error(`unknown --dtype "${d}" (expected a comma-separated list of ${FORGE_DTYPES.join(', ')})`);
          return d as ForgeDtype;
        });
        const config = widenModel(source, required(values.out, 'out'), {
          preset: values.preset, hiddenSize: int(values.hidden, 'hidden'), intermediateSize: int(values.intermediate, 'intermediate'),
          numLayers: int(values.layers, 'layers'), tokenizer: values.tokenizer, dtypes,
        }, bar.progress);
        bar.stop();
        console.log(`wrote ${values.out} (${(parameterCount(config) / 1e6).toFixed(2)}M parameters: hidden ${config.hiddenSize}, ` +
          `${config.numLayers} layers, ${config.numHeads} heads; ${dtypes.join(', ')})`);
        return;
      }
      case 'quantize': {
        const dir = positionals[0];
        if (!dir) throw new Error('missing DIR');
        const path = quantizeFolder(dir, required(values.dtype, 'dtype'), bar.progress);
        bar.stop();
        console.log(`wrote ${path}`);
        return;
      }
    }
  } finally {
    bar.stop();
  }
}

export async function main(argv: string[]): Promise<number> {
  const [command] = argv;
  try {
    if (command === 'build' || command === 'convert' || command === 'derive-draft' || command === 'quantize' || command === 'widen') {
      await forge(argv);
      return 0;
    }
    if (command === 'serve') {
      const { serve } = await import('./server/serve.ts');
      const { ensureDemoPair } = await import('./demo-models.ts');
      return await serve(argv.slice(1), { defaultModels: ensureDemoPair });
    }
    console.error(USAGE);
    return command === undefined || command === '--help' || command === '-h' ? 0 : 2;
  } catch (err) {
    console.error(`specserve ${command}: ${(err as Error).message}`);
    return 1;
  }
}
