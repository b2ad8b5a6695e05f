// Opens target and draft, checks they belong together, and wires the proposers into an engine. Runs in the engine's
// thread: the main thread (--engine-thread main) or the engine worker (the default).
import { existsSync } from 'node:fs';
import { basename, join } from 'node:path';
import { DTYPE_FILES, type Dtype } from '../runtime/model-folder.ts';
import type { Device } from '../runtime/execution-provider.ts';
import { Decoder } from '../runtime/decoder.ts';
import { TextTokenizer } from '../runtime/tokenizer.ts';
import { Engine, type EngineHooks } from '../speculative/engine.ts';
import { DraftModelProposer } from '../speculative/draft-model-proposer.ts';
import { NgramProposer } from '../speculative/ngram-proposer.ts';
import { PredictionProposer } from '../speculative/prediction-proposer.ts';
import type { Proposer } from '../speculative/proposer.ts';
import type { ServerConfig } from './config.ts';
import { GrammarService, grammarVocabulary } from '../runtime/structured/grammar-service.ts';

/** Plain data about the loaded models (crosses the worker boundary). */
export interface LoadedInfo {
  name: string;
  targetDir: string;
  /** 'none', 'ngram', or the draft folder. */
  draft: string;
  /** The target's weights, as chosen (ServerConfig.dtype or its default). */
  dtype: Dtype;
  targetDevice: string;
  draftDevice: string;
  maxModelLen: number;
  vocabSize: number;
}

/** fp16 on CUDA, where the folder has the variant (the GPU's arithmetic and memory traffic favour it; on the CPU it
 * is no faster, ONNX Runtime lacking float16 kernels for most ops); fp32 otherwise. */
export function defaultDtype(dir: string, device: Device): Dtype {
  return device === 'cuda' && existsSync(join(dir, 'onnx', DTYPE_FILES.fp16)) ? 'fp16' : 'fp32';
}

export async function openEngine(config: ServerConfig, hooks: EngineHooks, log: (m: string) => void,
  maxQueue = config.maxQueue): Promise<{ engine: Engine; info: LoadedInfo; tokenizer: TextTokenizer }> {
  if (!config.target) throw new Error('no target model: give --target DIR (the CLI fills in the built-in demo pair)');
  const targetDir = config.target;
  const draftSpec = config.draft ?? 'ngram';
  const dtype = config.dtype ?? defaultDtype(targetDir, config.device);
  const target = await Decoder.open(targetDir, { dtype, device: config.device, threads: config.threads, log });
  const tokenizer = TextTokenizer.load(targetDir);
  const modelLimit = target.folder.maxPositions;
  if (config.maxModelLen !== undefined && config.maxModelLen > modelLimit) {
    throw new Error(`--max-model-len ${config.maxModelLen} exceeds the target's context window of ${modelLimit}`);
  }
  const maxModelLen = config.maxModelLen ?? modelLimit;

  let proposer: Proposer | null = null;
  let draftDevice = '';
  let draftMode = '';
  // Verification appends the pending token and the drafts to the cache in one pass; a graph that cannot is served
  // plainly, whatever proposes (draft, n-gram, Predicted Outputs), rather than failing every speculative step.
  const speculates = await target.takesSeveralPositionsAfterPast();
  if (!speculates) {
    log(`speculation off: ${targetDir}'s graph cannot take a past and several new positions in one pass, which verifying ` +
      'drafts needs; it is served without speculation (drafts, n-gram and Predicted Outputs are ignored)');
  }
  if (!speculates) proposer = null;
  else if (draftSpec === 'ngram') proposer = new NgramProposer();
  else if (draftSpec !== 'none') {
    const draftTokenizer = TextTokenizer.load(draftSpec);
    if (draftTokenizer.vocabFingerprint !== tokenizer.vocabFingerprint) {
      throw new Error(`--draft ${draftSpec}: its tokenizer differs from the target's (${targetDir}); a draft must share the ` +
        "target's vocabulary token for token");
    }
    // One thread by default: ONNX Runtime's idle intra-op threads spin after each run, and two models taking turns on
    // two cores with a pool each steal each other's cores (the verify pass runs several times slower). A 1-thread
    // draft has no pool to spin, and the target's spinning thread does not contend with it.
    // A small draft may be better on the CPU beside a CUDA target: its passes are a few microseconds of arithmetic,
    // which a GPU pays for in kernel launches and copies, and on the CPU it drafts k tokens in one pass (draft chains).
    const draft = await Decoder.open(draftSpec, { dtype: config.draftDtype, device: config.draftDevice ?? config.device, threads: config.draftThreads, log });
    if (draft.vocabSize !== target.vocabSize) {
      await draft.close();
      throw new Error(`--draft ${draftSpec}: vocabulary size ${draft.vocabSize} differs from the target's ${target.vocabSize}`);
    }
    draftDevice = draft.device;
    const draftProposer = new DraftModelProposer(draft, { target });
    await draftProposer.warmUp(config.numSpeculativeTokens);
    draftMode = draftProposer.mode();
    proposer = draftProposer;
  }

  const constraints = new GrammarService(grammarVocabulary(tokenizer, target.vocabSize, target.folder.eosTokenIds), { workers: config.grammarWorkers });
  const engine = new Engine({
    target, tokenizer, proposer, predictionProposer: speculates ? new PredictionProposer() : undefined, constraints,
    numSpeculativeTokens: config.numSpeculativeTokens, adaptiveDraftLength: config.adaptiveDraftLength,
    disableSpeculationAtBatch: config.speculativeDisableByBatchSize,
    maxBatch: config.maxBatch, maxQueue, maxModelLen, hooks, prefixCacheBytes: config.prefixCacheBytes, prefillChunkTokens: config.prefillChunkTokens,
  });
  const name = config.servedModelName ?? basename(targetDir);
  log(`serving ${name} (${dtype}, ${target.device}${target.runsDirectly ? ', direct passes' : ''}) with proposer ${proposer?.name ?? 'none'}${draftDevice ? ` (${draftSpec}; greedy single streams ${draftMode})` : ''}, ` +
    `k <= ${config.numSpeculativeTokens}${config.adaptiveDraftLength ? ' by goodput' : ''}${config.speculativeDisableByBatchSize ? ` (off from ${config.speculativeDisableByBatchSize} requests)` : ''}, max batch ${config.maxBatch}, context ${maxModelLen}`);
  return {
    engine, tokenizer,
    info: { name, targetDir, draft: draftSpec, dtype, targetDevice: target.device, draftDevice, maxModelLen, vocabSize: target.vocabSize },
  };
}
