// Server configuration from flags (named as `vllm serve` names them where it has one) and environment variables.
// A bad value fails at start-up and names the option.
import { parseArgs } from 'node:util';
import { DTYPES, type Dtype } from '../runtime/model-folder.ts';
import { DEVICES, type Device } from '../runtime/execution-provider.ts';

export interface ServerConfig {
  host: string;
  port: number;
  /** Target model folder; undefined serves the built-in demo pair. */
  target?: string;
  /** Draft model folder, 'ngram', or 'none'. */
  draft?: string;
  /** Target weights; undefined: fp16 on CUDA where the folder has it, else fp32 (model-loading.ts). */
  dtype?: Dtype;
  draftDtype: Dtype;
  device: Device;
  /** The draft model's device; undefined: the target's. */
  draftDevice?: Device;
  threads: number;
  draftThreads: number;
  numSpeculativeTokens: number;
  adaptiveDraftLength: boolean;
  speculativeDisableByBatchSize: number;
  maxBatch: number;
  maxQueue: number;
  /** Prompt tokens prefilled per step while other requests decode (chunked prefill). */
  prefillChunkTokens: number;
  /** Bytes of finished requests' KV kept for requests that share their prefix; 0: off. */
  prefixCacheBytes: number;
  /** Threads that compile grammars and compute their token masks (structured output). */
  grammarWorkers: number;
  /** How tool calls are read from the model's text: auto (by the chat template), hermes, llama3_json or mistral. */
  toolCallParser: string;
  maxModelLen?: number;
  apiKey?: string;
  servedModelName?: string;
  /** /health and /metrics without the API key (load balancers and Prometheus usually have none). */
  publicHealth: boolean;
  publicMetrics: boolean;
  bodyLimitBytes: number;
  maxN: number;
  maxStop: number;
  maxPrompts: number;
  maxPromptTokens?: number;
  maxTokensPerRequest?: number;
  shutdownTimeoutMs: number;
  logLevel: string;
  /** Where the engine runs: a worker thread (keeps the HTTP thread responsive) or the main thread. */
  engineThread: 'worker' | 'main';
  /** Bytes of stream frames held for a client that reads slower than tokens come, before it is cut off. */
  streamBufferBytes: number;
  /** Wait before restarting an engine worker that died (later attempts back off, doubling up to 30 s). */
  engineRestartDelayMs?: number;
}

interface OptionSpec {
  key: keyof ServerConfig;
  env: string;
  kind: 'string' | 'int' | 'bool' | 'dtype' | 'device' | 'thread';
  help: string;
}

export const OPTIONS: Record<string, OptionSpec> = {
  host: { key: 'host', env: 'HOST', kind: 'string', help: 'address to listen on (default 127.0.0.1)' },
  port: { key: 'port', env: 'PORT', kind: 'int', help: 'port (default 8000)' },
  target: { key: 'target', env: 'SPECSERVE_TARGET', kind: 'string', help: 'target model folder (default: the built-in demo pair)' },
  draft: { key: 'draft', env: 'SPECSERVE_DRAFT', kind: 'string', help: 'draft model folder, "ngram", or "none"' },
  dtype: { key: 'dtype', env: 'SPECSERVE_DTYPE', kind: 'dtype', help: 'target weights: fp32, fp16, int8, q8, q4 (default fp32; fp16 with --device cuda where the folder has it)' },
  'draft-dtype': { key: 'draftDtype', env: 'SPECSERVE_DRAFT_DTYPE', kind: 'dtype', help: 'draft weights (default fp32)' },
  device: { key: 'device', env: 'SPECSERVE_DEVICE', kind: 'device', help: 'cpu, cuda, or auto (CUDA, else CPU) (default cpu)' },
  'draft-device': { key: 'draftDevice', env: 'SPECSERVE_DRAFT_DEVICE', kind: 'device', help: 'the draft model\'s device: cpu, cuda, or auto (default: --device)' },
  threads: { key: 'threads', env: 'SPECSERVE_THREADS', kind: 'int', help: 'ONNX Runtime intra-op threads; 0 picks by model size (default 0)' },
  'draft-threads': { key: 'draftThreads', env: 'SPECSERVE_DRAFT_THREADS', kind: 'int', help: 'draft model intra-op threads (default 1)' },
  'num-speculative-tokens': { key: 'numSpeculativeTokens', env: 'SPECSERVE_NUM_SPECULATIVE_TOKENS', kind: 'int', help: 'maximum draft length k (default 4)' },
  'adaptive-draft-length': { key: 'adaptiveDraftLength', env: 'SPECSERVE_ADAPTIVE_DRAFT_LENGTH', kind: 'bool', help: 'choose k per step for the most expected tokens per second, from measured step costs and acceptance (default true)' },
  'speculative-disable-by-batch-size': { key: 'speculativeDisableByBatchSize', env: 'SPECSERVE_SPECULATIVE_DISABLE_BY_BATCH_SIZE', kind: 'int', help: 'override of the goodput policy: plain decoding while this many requests run or wait; 0: never (default 0)' },
  'max-batch': { key: 'maxBatch', env: 'SPECSERVE_MAX_BATCH', kind: 'int', help: 'sequences per batched step (vLLM: --max-num-seqs) (default 16)' },
  'max-queue': { key: 'maxQueue', env: 'SPECSERVE_MAX_QUEUE', kind: 'int', help: 'waiting requests before 429 (default 256)' },
  'prefill-chunk-tokens': { key: 'prefillChunkTokens', env: 'SPECSERVE_PREFILL_CHUNK_TOKENS', kind: 'int', help: 'prompt tokens prefilled per step while other requests decode (chunked prefill: running streams wait for one chunk a step, not a whole long prompt) (default 16)' },
  'prefix-cache-bytes': { key: 'prefixCacheBytes', env: 'SPECSERVE_PREFIX_CACHE_BYTES', kind: 'int', help: 'bytes of finished requests\' KV (target and draft) kept for requests that start the same way (automatic prefix caching), least recently used out first; 0: off (default 268435456)' },
  'tool-call-parser': { key: 'toolCallParser', env: 'SPECSERVE_TOOL_CALL_PARSER', kind: 'string', help: 'how tool calls are written and read: auto (from the chat template), hermes, llama3_json or mistral (default auto)' },
  'grammar-workers': { key: 'grammarWorkers', env: 'SPECSERVE_GRAMMAR_WORKERS', kind: 'int', help: 'threads that compile structured-output grammars and compute their token masks, started when first needed: a new grammar compiles on one without running requests (default 2)' },
  'max-model-len': { key: 'maxModelLen', env: 'SPECSERVE_MAX_MODEL_LEN', kind: 'int', help: 'context window (default: the model\'s)' },
  'api-key': { key: 'apiKey', env: 'SPECSERVE_API_KEY', kind: 'string', help: 'require Authorization: Bearer KEY on /v1/*' },
  'served-model-name': { key: 'servedModelName', env: 'SPECSERVE_SERVED_MODEL_NAME', kind: 'string', help: 'model name in the API (default: folder name)' },
  'public-health': { key: 'publicHealth', env: 'SPECSERVE_PUBLIC_HEALTH', kind: 'bool', help: '/health without the API key (default true)' },
  'public-metrics': { key: 'publicMetrics', env: 'SPECSERVE_PUBLIC_METRICS', kind: 'bool', help: '/metrics without the API key (default true)' },
  'body-limit': { key: 'bodyLimitBytes', env: 'SPECSERVE_BODY_LIMIT', kind: 'int', help: 'request body limit in bytes (default 1048576)' },
  'max-n': { key: 'maxN', env: 'SPECSERVE_MAX_N', kind: 'int', help: 'largest n (choices per prompt) (default 8)' },
  'max-prompts': { key: 'maxPrompts', env: 'SPECSERVE_MAX_PROMPTS', kind: 'int', help: 'most prompts in one completions request (default 64)' },
  'max-stop': { key: 'maxStop', env: 'SPECSERVE_MAX_STOP', kind: 'int', help: 'most stop strings per request (default 16)' },
  'max-prompt-tokens': { key: 'maxPromptTokens', env: 'SPECSERVE_MAX_PROMPT_TOKENS', kind: 'int', help: 'longest prompt (default: max-model-len - 1)' },
  'max-tokens-per-request': { key: 'maxTokensPerRequest', env: 'SPECSERVE_MAX_TOKENS_PER_REQUEST', kind: 'int', help: 'largest max_tokens (default: max-model-len)' },
  'shutdown-timeout-ms': { key: 'shutdownTimeoutMs', env: 'SPECSERVE_SHUTDOWN_TIMEOUT_MS', kind: 'int', help: 'on SIGTERM, time for in-flight requests (default 30000)' },
  'engine-thread': { key: 'engineThread', env: 'SPECSERVE_ENGINE_THREAD', kind: 'thread', help: 'worker (default) or main: where inference runs' },
  'stream-buffer-limit': { key: 'streamBufferBytes', env: 'SPECSERVE_STREAM_BUFFER_LIMIT', kind: 'int', help: 'bytes of a stream held for a client that reads too slowly before it is cut off and its request cancelled (default 4194304)' },
  'engine-restart-delay-ms': { key: 'engineRestartDelayMs', env: 'SPECSERVE_ENGINE_RESTART_DELAY_MS', kind: 'int', help: 'wait before restarting an engine worker that died; repeated failures back off up to 30 s (default 0)' },
  'log-level': { key: 'logLevel', env: 'SPECSERVE_LOG_LEVEL', kind: 'string', help: 'pino level (default info)' },
};

export const DEFAULTS: ServerConfig = {
  host: '127.0.0.1', port: 8000, draftDtype: 'fp32', device: 'cpu', threads: 0, draftThreads: 1, numSpeculativeTokens: 4,
  adaptiveDraftLength: true, speculativeDisableByBatchSize: 0, maxBatch: 16, maxQueue: 256, prefixCacheBytes: 256 * 1024 * 1024, prefillChunkTokens: 16, grammarWorkers: 2, toolCallParser: 'auto', publicHealth: true, publicMetrics: true, bodyLimitBytes: 1 << 20,
  maxN: 8, maxStop: 16, maxPrompts: 64, shutdownTimeoutMs: 30_000, streamBufferBytes: 4 * 1024 * 1024, logLevel: 'info', engineThread: 'worker',
};

function convert(flag: string, spec: OptionSpec, raw: string): unknown {
  const fail = (why: string) => new Error(`--${flag} (${spec.env}): ${why}, got "${raw}"`);
  switch (spec.kind) {
    case 'string':
      if (raw === '') throw fail('must not be empty');
      return raw;
    case 'int': {
      const n = Number(raw);
      if (!Number.isInteger(n) || n < 0) throw fail('must be a non-negative integer');
      return n;
    }
    case 'bool':
      if (['true', '1', 'yes', ''].includes(raw)) return true;
      if (['false', '0', 'no'].includes(raw)) return false;
      throw fail('must be true or false');
    case 'dtype':
      if (!(DTYPES as string[]).includes(raw)) throw fail(`must be one of ${DTYPES.join(', ')}`);
      return raw;
    case 'device':
      if (!(DEVICES as string[]).includes(raw)) throw fail(`must be one of ${DEVICES.join(', ')}`);
      return raw;
    case 'thread':
      if (raw !== 'worker' && raw !== 'main') throw fail('must be worker or main');
      return raw;
  }
}

export function parseServerConfig(argv: string[], env: NodeJS.ProcessEnv = process.env): ServerConfig {
  const { values } = parseArgs({
    args: argv,
    options: Object.fromEntries(Object.entries(OPTIONS).map(([flag, s]) => [flag, { type: s.kind === 'bool' ? 'string' as const : 'string' as const }])),
    strict: true,
  });
  const config: Record<string, unknown> = { ...DEFAULTS };
  for (const [flag, spec] of Object.entries(OPTIONS)) {
    const raw = (values as Record<string, string | undefined>)[flag] ?? env[spec.env];
    if (raw !== undefined) config[spec.key] = convert(flag, spec, raw);
  }
  const c = config as unknown as ServerConfig;
  if (c.port > 65535) throw new Error(`--port (PORT): must be at most 65535, got ${c.port}`);
  if (c.maxBatch < 1) throw new Error('--max-batch (SPECSERVE_MAX_BATCH): must be at least 1');
  if (c.numSpeculativeTokens > 16) throw new Error('--num-speculative-tokens (SPECSERVE_NUM_SPECULATIVE_TOKENS): must be at most 16');
  if (c.maxN < 1) throw new Error('--max-n (SPECSERVE_MAX_N): must be at least 1');
  if (!['auto', 'hermes', 'llama3_json', 'mistral'].includes(c.toolCallParser)) {
    throw new Error(`--tool-call-parser (SPECSERVE_TOOL_CALL_PARSER): must be auto, hermes, llama3_json or mistral, got "${c.toolCallParser}"`);
  }
  if (c.prefillChunkTokens < 1) throw new Error('--prefill-chunk-tokens (SPECSERVE_PREFILL_CHUNK_TOKENS): must be at least 1');
  if (c.grammarWorkers < 1) throw new Error('--grammar-workers (SPECSERVE_GRAMMAR_WORKERS): must be at least 1');
  if (c.maxPrompts < 1) throw new Error('--max-prompts (SPECSERVE_MAX_PROMPTS): must be at least 1');
  return c;
}

export function usage(): string {
  return 'specserve serve [options]\n' + Object.entries(OPTIONS)
    .map(([flag, s]) => `  --${flag.padEnd(26)} ${s.help} [env ${s.env}]`).join('\n');
}
