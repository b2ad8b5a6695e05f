// A draft decoder's own passes (docs/design.md, "Draft chains and fused steps"): a draft chain drafts k tokens in one
// session.run (graphs/draft-chain.ts), and a fused step runs that chain and the target's verification of its drafts
// in one session.run (graphs/speculative-step.ts). The fused step feeds both decoders' caches, through each one's
// PassIo; its sessions are built once per draft length and kept.
import ort from 'onnxruntime-node';
import { buildDraftChain } from './graphs/draft-chain.ts';
import { buildSpeculativeStep } from './graphs/speculative-step.ts';
import { appended } from './graphs/derive.ts';
import { encodeModel, type ModelProto } from '../onnx/onnx-proto.ts';
import { createSession } from './execution-provider.ts';
import type { OrtSession } from './ort-session.ts';
import type { KvCache } from './kv-cache.ts';
import type { FeedScratch } from './feed-scratch.ts';
import { logitsOf, type ForwardRow, type KvFeeds } from './kv-feeds.ts';

/** What draft passes need of a decoder, on the draft's side and on the target's. */
export interface PassIo {
  kv: KvFeeds;
  scratch: FeedScratch;
  appendsKv: boolean;
  threads: number;
  directRuns: boolean;
  /** The graph its session runs, before appended KV (chains and fused steps are built from it). */
  graph(): ModelProto;
  /** Counts one pass (Decoder.numForwards). */
  counted(): void;
}

export interface FusedStepResult {
  drafts: number[];
  /** The target's logits at each of its steps + 1 positions. */
  logits: Float32Array[];
  /** Sampled steps: the draft's and the target's distributions softmax(logits / T) at each position. */
  draftProbs?: Float32Array[];
  targetProbs?: Float32Array[];
}

const PREFIX = 'draft.';

export class DraftPasses {
  /** Draft chains by number of steps. */
  private readonly chains = new Map<number, Promise<OrtSession>>();
  /** Fused steps with a target, by number of draft steps (negative: sampled steps). */
  private readonly steps = new Map<object, Map<number, Promise<OrtSession>>>();
  private readonly prefixedNames = new Map<string, string>();

  constructor(private readonly draft: { readonly passIo: PassIo }) {}

  /** Greedy drafts of `steps` tokens after `row.tokens`; the cache ends up holding row.tokens and the first steps - 1
   * drafts, as if they had been fed one pass at a time. */
  async chain(row: ForwardRow, steps: number): Promise<number[]> {
    const io = this.draft.passIo;
    const session = await this.chainSession(steps);
    const pass = io.kv.prepare([row], steps - 1);
    const out = await session.run(pass.feeds);
    io.counted();
    io.kv.commit([row], out, pass, steps - 1, '');
    return Array.from(out.draft_ids.data as BigInt64Array, Number);
  }

  /**
   * Drafting of `steps` tokens after `draftRow.tokens` and the target's pass over `pending` and those drafts, in one
   * session.run. Greedy by default; `sampled` (a temperature and one uniform per step) draws the drafts from
   * softmax(logits / T) by inverse CDF and returns both models' distributions. The draft cache ends up as chain()
   * leaves it; the target cache holds pending and every draft (the caller rolls back what it rejects).
   */
  async fused(target: { readonly passIo: PassIo }, draftRow: ForwardRow, targetCache: KvCache, pending: number, steps: number,
    sampled?: { temperature: number; uniforms: number[] }): Promise<FusedStepResult> {
    const draftIo = this.draft.passIo;
    const targetIo = target.passIo;
    const session = await this.stepSession(target, steps, sampled !== undefined);
    const targetRow: ForwardRow = { cache: targetCache, tokens: new Array<number>(steps + 1).fill(pending) };
    const d = draftIo.kv.prepare([draftRow], steps - 1);
    const t = targetIo.kv.prepare([targetRow], 0);
    // The target's ids start with the pending token: its first scratch element is pending_ids.
    const feeds: Record<string, ort.Tensor> = { pending_ids: targetIo.scratch.intTensor(0, [1, 1]) };
    for (const name in t.feeds) if (name !== 'input_ids') feeds[name] = t.feeds[name];
    for (const name in d.feeds) feeds[this.prefixed(name)] = d.feeds[name];
    if (sampled) {
      if (sampled.uniforms.length !== steps) throw new Error(`speculativeStep: ${sampled.uniforms.length} uniforms for ${steps} steps`);
      feeds.temperature = feeds[this.prefixed('temperature')] = new ort.Tensor('float32', Float32Array.of(sampled.temperature), [1]);
      sampled.uniforms.forEach((u, i) => (feeds[this.prefixed(`uniform.${i}`)] = new ort.Tensor('float32', Float32Array.of(u), [1, 1, 1])));
    }
    const out = await session.run(feeds);
    draftIo.counted();
    targetIo.counted();
    draftIo.kv.commit([draftRow], out, d, steps - 1, PREFIX);
    targetIo.kv.commit([targetRow], out, t, 0, '');
    const drafts = Array.from(out[`${PREFIX}draft_ids`].data as BigInt64Array, Number);
    const logits = logitsOf(out.logits, [targetRow], t.S)[0];
    if (!sampled) return { drafts, logits };
    const rows = (tensor: ort.Tensor, n: number) => {
      const V = Number(tensor.dims[2]);
      const data = tensor.data as Float32Array;
      return Array.from({ length: n }, (_, i) => data.subarray(i * V, (i + 1) * V));
    };
    return { drafts, logits, draftProbs: rows(out[`${PREFIX}draft_probs`], steps), targetProbs: rows(out.probs, steps + 1) };
  }

  /** A draft input or output's name inside a fused step, built once per name. */
  private prefixed(name: string): string {
    let p = this.prefixedNames.get(name);
    if (p === undefined) this.prefixedNames.set(name, (p = `${PREFIX}${name}`));
    return p;
  }

  chainSession(steps: number): Promise<OrtSession> {
    let chain = this.chains.get(steps);
    if (!chain) {
      const io = this.draft.passIo;
      const model = buildDraftChain(io.graph(), steps);
      if (io.appendsKv) appended(model, '', true);
      const bytes = encodeModel(model);
      chain = createSession(bytes, bytes.length, { device: 'cpu', threads: io.threads, directRuns: io.directRuns }).then((c) => c.session);
      this.chains.set(steps, chain);
    }
    return chain;
  }

  stepSession(target: { readonly passIo: PassIo }, steps: number, sampled: boolean): Promise<OrtSession> {
    let byTarget = this.steps.get(target);
    if (!byTarget) this.steps.set(target, (byTarget = new Map()));
    const key = sampled ? -steps : steps;
    let step = byTarget.get(key);
    if (!step) {
      const draftIo = this.draft.passIo;
      const targetIo = target.passIo;
      const model = buildSpeculativeStep(draftIo.graph(), targetIo.graph(), steps, { sampled });
      if (draftIo.appendsKv) appended(model, this.prefixed(''), true);
      if (targetIo.appendsKv) appended(model, '', true);
      const bytes = encodeModel(model);
      step = createSession(bytes, bytes.length, { device: 'cpu', threads: targetIo.threads, directRuns: draftIo.directRuns }).then((c) => c.session);
      byTarget.set(key, step);
    }
    return step;
  }

  async close(): Promise<void> {
    for (const chain of this.chains.values()) await (await chain).release();
    for (const steps of this.steps.values()) for (const step of steps.values()) await (await step).release();
  }
}
