// Shared helpers for the benchmarks (never part of npm test).
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { cpus, totalmem } from 'node:os';
import { buildRandomModel, convertLlama2c, deriveDraft, quantizeFolder } from '../src/forge/forge.ts';
import type { Engine } from '../src/speculative/engine.ts';
import type { GenerationRequest, SequenceStats } from '../src/speculative/generation-request.ts';

export const OUT = resolve(import.meta.dirname, 'out');
export const SHARED = resolve(import.meta.dirname, '../../shared/models');

export function machine(): string {
  return `${cpus()[0]?.model ?? 'unknown CPU'} x${cpus().length}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}`;
}

/** A forge-built model under bench/out, built once. */
export function benchModel(name: string, build: (dir: string) => void): string {
  const dir = join(OUT, name);
  if (!existsSync(dir)) {
    console.error(`building ${dir} ...`);
    build(dir);
  }
  return dir;
}

export const randomBench = (preset: string, dtypes: ('fp16' | 'int8')[] = []) => {
  const dir = benchModel(preset, (out) => buildRandomModel(out, { preset, seed: 1 }));
  for (const d of dtypes) if (!existsSync(join(dir, 'onnx', `model_${d}.onnx`))) quantizeFolder(dir, d);
  return dir;
};
export const earlyExit = (target: string, layers: number) => benchModel(`${target.split('/').pop()}-exit${layers}`, (dir) => deriveDraft(target, layers, dir));
export const stories = () => benchModel('stories260K', (dir) => convertLlama2c(join(SHARED, 'stories260K/stories260K.bin'), join(SHARED, 'stories260K/tok512.bin'), dir));
export const storiesDraft = () => benchModel('stories260K-draft', (dir) =>
  convertLlama2c(join(SHARED, 'stories260K-draft/stories260K-draft.bin'), join(SHARED, 'stories260K/tok512.bin'), dir));

export function run(engine: Engine, request: GenerationRequest): Promise<{ tokens: number[]; stats: SequenceStats }> {
  return new Promise((resolvePromise, reject) => {
    const id = engine.submit(request, (e) => {
      if (e.type === 'done') resolvePromise({ tokens: e.tokens, stats: e.stats });
      if (e.type === 'error') reject(e.error);
    });
    if (id === null) reject(new Error('queue full'));
  });
}

export function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

export const fmt = (n: number, digits = 1) => n.toFixed(digits);
