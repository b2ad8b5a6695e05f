// Execution provider choice. onnxruntime-node does not fall back by itself: ['cuda', 'cpu'] fails outright when the
// CUDA provider library is absent (it is not in the npm package), so `auto` tries CUDA alone first and then CPU.
import ort from 'onnxruntime-node';
import { createCpuSession, type OrtSession } from './ort-session.ts';

export type Device = 'cpu' | 'cuda' | 'auto';
export const DEVICES: Device[] = ['cpu', 'cuda', 'auto'];

export interface SessionOptions {
  device: Device;
  /** Intra-op threads; 0 picks a default from the model size. */
  threads: number;
  log?: (message: string) => void;
  /** CPU sessions run passes without an event-loop turn each (ort-session.ts). Default true. */
  directRuns?: boolean;
  /** Write ONNX Runtime's profile (every node's kernel, with the provider that ran it) to `PREFIX_<time>.json`; such
   * sessions use the public API, whose endProfiling writes the file. */
  profilePrefix?: string;
  /** ONNX Runtime's memory patterns on CPU; default: for small models only (usesMemoryPatterns). */
  memoryPatterns?: boolean;
}

// Small models are dominated by per-op overhead, where a second thread only adds synchronisation; large models are
// memory-bound and gain from more.
const SMALL_MODEL_BYTES = 64 * 1024 * 1024;

export function defaultThreads(modelBytes: number, cores: number): number {
  return modelBytes < SMALL_MODEL_BYTES ? 1 : Math.max(1, Math.min(cores, 4));
}

// ONNX Runtime plans the memory of each new set of input shapes as one block ("memory patterns") and takes that block
// whole from its arena from the second run of the set on. A decoder's shapes change every few steps (rows, positions,
// KV capacity), and a large model's block holds every layer's present KV: tens of MB that the arena, fragmented by the
// shapes before, takes as fresh memory, whose page faults stall every stream for a pass (docs/design.md, "The
// model-load path"). A small model's block is small, and planned allocation saves part of its short step.
export function usesMemoryPatterns(modelBytes: number): boolean {
  return modelBytes < SMALL_MODEL_BYTES;
}

export async function createSession(modelPath: string | Uint8Array, modelBytes: number, o: SessionOptions):
  Promise<{ session: OrtSession; device: 'cpu' | 'cuda' }> {
  const base: ort.InferenceSession.SessionOptions = {
    intraOpNumThreads: o.threads > 0 ? o.threads : defaultThreads(modelBytes, (await import('node:os')).availableParallelism()),
    interOpNumThreads: 1,
    graphOptimizationLevel: 'all',
  };
  if (o.profilePrefix) Object.assign(base, { enableProfiling: true, profileFilePrefix: o.profilePrefix });
  const create = (ep: 'cpu' | 'cuda', quiet = false): Promise<OrtSession> => {
    const cpu = ep === 'cpu' ? { ...base, enableMemPattern: o.memoryPatterns ?? usesMemoryPatterns(modelBytes) } : base;
    if (ep === 'cpu' && (o.directRuns ?? true) && !o.profilePrefix) return createCpuSession(modelPath, cpu);
    const options = { ...cpu, executionProviders: [ep], ...(quiet ? { logSeverityLevel: 4 as const } : {}) };
    return typeof modelPath === 'string' ? ort.InferenceSession.create(modelPath, options) : ort.InferenceSession.create(modelPath, options);
  };
  if (o.device === 'cpu') return { session: await create('cpu'), device: 'cpu' };
  try {
    return { session: await create('cuda', o.device === 'auto'), device: 'cuda' };
  } catch (err) {
    if (o.device === 'cuda') throw new Error(`--device cuda: the CUDA execution provider could not start (${(err as Error).message.split('\n')[0]})`);
    o.log?.(`device auto: CUDA execution provider unavailable (${(err as Error).message.split('\n')[0]}); using CPU`);
    return { session: await create('cpu'), device: 'cpu' };
  }
}
