// The sampling distributions of many rows of logits at once: softmax(logits / T) in one ONNX Runtime run, then each
// request's top-k / top-p / min-p in JS (sampling.ts applyCutoffs). In JS the softmax is one Math.exp per token, an
// order of magnitude slower than ONNX Runtime's kernel on real vocabularies (BENCHMARKS.md, Sampling). A run has a
// fixed cost of about a 512-token softmax in JS, so vocabularies below
// ORT_SOFTMAX_FROM stay in JS. The choice depends on the vocabulary alone, so a seeded request's rows go the same way
// whether it runs alone or in a batch, and each row's result does not depend on the others in the run.
import ort from 'onnxruntime-node';
import { GraphBuilder } from '../onnx/graph-builder.ts';
import { DataType, encodeModel } from '../onnx/onnx-proto.ts';
import { createCpuSession, type OrtSession } from './ort-session.ts';
import { applyCutoffs, isGreedy, probabilities, type SamplingParams } from './sampling.ts';

export const ORT_SOFTMAX_FROM = 4096;

// One small session per thread, built on first use and kept (like a compiled kernel): every engine in a thread shares
// it, and a run does not outlive the call that awaits it.
let session: Promise<OrtSession> | null = null;

function softmaxSession(): Promise<OrtSession> {
  if (!session) {
    const g = new GraphBuilder();
    const logits = g.input('logits', DataType.FLOAT, ['rows', 'vocab']);
    const temperature = g.input('temperature', DataType.FLOAT, ['rows', 1]);
    g.op1('Softmax', [g.op1('Div', [logits, temperature])], { axis: -1 }, 'probs');
    g.output('probs', DataType.FLOAT, ['rows', 'vocab']);
    const bytes = encodeModel(g.toModel({ opset: 13, producer: 'specserve', graphName: 'sampling_softmax' }));
    session = createCpuSession(bytes, { intraOpNumThreads: 1, interOpNumThreads: 1, graphOptimizationLevel: 'all' });
  }
  return session;
}

/** probabilities(rows[i], params[i]) for every row (one vocabulary), the softmaxes in one run where the vocabulary is
 * large. Greedy rows are point masses, as there. */
export async function rowProbabilities(rows: Float32Array[], params: SamplingParams[]): Promise<Float32Array[]> {
  if (rows.length !== params.length) throw new Error(`rowProbabilities: ${rows.length} rows, ${params.length} sampling params`);
  const sampled = rows.flatMap((_, i) => (isGreedy(params[i]) ? [] : [i]));
  const V = rows[0]?.length ?? 0;
  if (sampled.length === 0 || V < ORT_SOFTMAX_FROM) return rows.map((row, i) => probabilities(row, params[i]));
  const logits = new Float32Array(sampled.length * V);
  const temperatures = new Float32Array(sampled.length);
  sampled.forEach((i, j) => {
    if (rows[i].length !== V) throw new Error(`rowProbabilities: rows of ${V} and ${rows[i].length} tokens`);
    logits.set(rows[i], j * V);
    temperatures[j] = params[i].temperature;
  });
  const out = await (await softmaxSession()).run({
    logits: new ort.Tensor('float32', logits, [sampled.length, V]),
    temperature: new ort.Tensor('float32', temperatures, [sampled.length, 1]),
  });
  const probs = out.probs.data as Float32Array;
  const result = rows.map((row, i) => (isGreedy(params[i]) ? probabilities(row, params[i]) : null));
  sampled.forEach((i, j) => (result[i] = applyCutoffs(probs.subarray(j * V, (j + 1) * V), params[i])));
  return result as Float32Array[];
}
