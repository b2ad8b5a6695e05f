// Prometheus metrics (the only file that imports prom-client). Names follow Prometheus conventions and stay close to
// vLLM's (vllm:time_to_first_token_seconds -> specserve_time_to_first_token_seconds) so dashboards translate.
import client from 'prom-client';
import type { ForwardPhase } from '../speculative/engine.ts';
import type { SequenceStats } from '../speculative/generation-request.ts';

// Seconds: from sub-millisecond tiny-model passes to multi-second prompts on large models.
const PASS_BUCKETS = [0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5];
const REQUEST_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];
const TOKEN_BUCKETS = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192];
const BATCH_BUCKETS = [1, 2, 4, 8, 16, 32, 64];
// prom-client's default gauges whose names end in _total, which `promtool check metrics` rejects for non-counters.
const LINT_FAILING_DEFAULTS = ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total'];

export class Metrics {
  readonly registry = new client.Registry();
  private readonly h = (name: string, help: string, buckets: number[], labelNames: string[] = []) =>
    new client.Histogram({ name, help, buckets, labelNames, registers: [this.registry] });
  private readonly c = (name: string, help: string, labelNames: string[] = []) =>
    new client.Counter({ name, help, labelNames, registers: [this.registry] });

  readonly prefillTime = this.h('specserve_request_prefill_time_seconds', 'Time spent in the prefill pass of a request.', REQUEST_BUCKETS);
  readonly decodeTime = this.h('specserve_request_decode_time_seconds', 'Time from the first to the last token of a request.', REQUEST_BUCKETS);
  readonly ttft = this.h('specserve_time_to_first_token_seconds', 'Time from arrival to the first generated token.', REQUEST_BUCKETS);
  readonly itl = this.h('specserve_inter_token_latency_seconds', 'Time between successive generated tokens.', PASS_BUCKETS);
  readonly e2e = this.h('specserve_e2e_request_latency_seconds', 'Time from arrival to completion.', REQUEST_BUCKETS);
  readonly queueTime = this.h('specserve_request_queue_time_seconds', 'Time a request waited before its prefill.', REQUEST_BUCKETS);
  readonly promptTokensHist = this.h('specserve_request_prompt_tokens', 'Prompt tokens per request.', TOKEN_BUCKETS);
  readonly generationTokensHist = this.h('specserve_request_generation_tokens', 'Generated tokens per request.', TOKEN_BUCKETS);
  readonly promptTokens = this.c('specserve_prompt_tokens_total', 'Prompt tokens processed.');
  readonly generationTokens = this.c('specserve_generation_tokens_total', 'Tokens generated.');
  readonly requestSuccess = this.c('specserve_request_success_total', 'Finished requests by finish reason.', ['finished_reason']);
  readonly requestErrors = this.c('specserve_request_errors_total', 'Requests failed by an engine error.');
  readonly rejected = this.c('specserve_requests_rejected_total', 'Requests refused because the queue was full.');
  readonly prefixQueries = this.c('specserve_prefix_cache_queries_total', 'Prompt tokens looked up in the prefix cache.');
  readonly prefixHits = this.c('specserve_prefix_cache_hits_total', 'Prompt tokens whose KV the prefix cache held (not prefilled).');
  readonly httpResponses = this.c('specserve_http_requests_total', 'HTTP responses by route (the matched pattern, or "unmatched") and status.', ['route', 'status']);
  readonly forwardTime = this.h('specserve_forward_duration_seconds', 'Duration of one batched model pass.', PASS_BUCKETS, ['phase']);
  readonly forwardBatch = this.h('specserve_forward_batch_size', 'Sequences in one batched model pass.', BATCH_BUCKETS, ['phase']);
  readonly numDrafts = this.c('specserve_spec_decode_num_drafts_total', 'Verification passes that checked a draft.');
  readonly numDraftTokens = this.c('specserve_spec_decode_num_draft_tokens_total', 'Draft tokens proposed.');
  readonly numAcceptedTokens = this.c('specserve_spec_decode_num_accepted_tokens_total', 'Draft tokens accepted.');
  readonly acceptedPerPos = this.c('specserve_spec_decode_num_accepted_tokens_per_pos_total', 'Draft tokens accepted at each draft position.', ['position']);
  readonly acceptedLength = this.h('specserve_spec_decode_accepted_length', 'Draft tokens accepted per verification pass.', [0, 1, 2, 3, 4, 5, 6, 8, 12, 16]);
  readonly draftLength = this.h('specserve_spec_decode_draft_length', 'Draft length chosen for each sequence at each decode step (0: plain decoding).', [0, 1, 2, 3, 4, 5, 6, 8, 12, 16]);
  readonly running = new client.Gauge({ name: 'specserve_num_requests_running', help: 'Requests in the running batch.', registers: [this.registry] });
  readonly waiting = new client.Gauge({ name: 'specserve_num_requests_waiting', help: 'Requests waiting for a batch slot.', registers: [this.registry] });
  readonly kvBytes = new client.Gauge({ name: 'specserve_kv_cache_usage_bytes', help: 'KV cache bytes held by target and draft (a large batch buffer counts its room to grow, most of it not resident until used).', registers: [this.registry] });
  readonly modelInfo = new client.Gauge({ name: 'specserve_model_info', help: 'Served models (value 1).', labelNames: ['model', 'role', 'dtype', 'device'], registers: [this.registry] });

  constructor() {
    client.collectDefaultMetrics({ register: this.registry });
    for (const name of LINT_FAILING_DEFAULTS) this.registry.removeSingleMetric(name);
  }

  onForward(phase: ForwardPhase, seconds: number, batchSize: number): void {
    this.forwardTime.observe({ phase }, seconds);
    this.forwardBatch.observe({ phase }, batchSize);
  }

  onVerify(drafted: number, accepted: number): void {
    this.numDrafts.inc();
    this.numDraftTokens.inc(drafted);
    this.numAcceptedTokens.inc(accepted);
    this.acceptedLength.observe(accepted);
    for (let pos = 0; pos < accepted; pos++) this.acceptedPerPos.inc({ position: String(pos) });
  }

  onDraftLengths(ks: number[]): void {
    for (const k of ks) this.draftLength.observe(k);
  }

  onTokens(numTokens: number, seconds: number): void {
    for (let i = 0; i < numTokens; i++) this.itl.observe(seconds / numTokens);
  }

  onPrefixCache(queried: number, hit: number): void {
    this.prefixQueries.inc(queried);
    if (hit > 0) this.prefixHits.inc(hit);
  }

  onFinish(stats: SequenceStats, finishReason: string, totalSeconds: number): void {
    this.prefillTime.observe(stats.prefillSeconds);
    this.decodeTime.observe(stats.decodeSeconds);
    this.ttft.observe(stats.firstTokenSeconds);
    this.queueTime.observe(stats.queueSeconds);
    this.e2e.observe(totalSeconds);
    this.promptTokensHist.observe(stats.numPromptTokens);
    this.generationTokensHist.observe(stats.numGeneratedTokens);
    this.promptTokens.inc(stats.numPromptTokens);
    this.generationTokens.inc(stats.numGeneratedTokens);
    this.requestSuccess.inc({ finished_reason: finishReason });
  }

  async render(gauges: { running: number; waiting: number; kvBytes: number }): Promise<string> {
    this.running.set(gauges.running);
    this.waiting.set(gauges.waiting);
    this.kvBytes.set(gauges.kvBytes);
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}
