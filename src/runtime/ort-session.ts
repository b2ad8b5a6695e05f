// CPU sessions whose run does not wait for an event-loop turn.
//
// onnxruntime-node's `InferenceSession.run` calls its native binding's run, which is synchronous (it holds the calling
// thread for the whole pass either way), from a `setImmediate`: every pass costs one turn of the event loop on top of
// the pass. A session made here holds the binding's own session and runs it at once; the engine gives the event loop
// its turns on a time budget instead (speculative/engine.ts), so that I/O is still served every few milliseconds. The
// saving is per pass, so it matters on small models (docs/design.md, "The model-load path"; BENCHMARKS.md, Engine
// overhead).
//
// The binding is onnxruntime-node's internal module (`dist/binding.js`, the package pinned at 1.30.0). Where it cannot
// be loaded, does not have the expected shape or fails to load a model, sessions come from the public API, whose runs
// keep their turn.
import ort from 'onnxruntime-node';
import { createRequire } from 'node:module';

/** What the runtime uses of a session: onnxruntime-node's, or one made here (same results, no event-loop turn). */
export type OrtSession = Pick<ort.InferenceSession, 'inputNames' | 'outputNames' | 'inputMetadata' | 'outputMetadata'> & {
  run(feeds: ort.InferenceSession.FeedsType, options?: ort.InferenceSession.RunOptions): Promise<ort.InferenceSession.ReturnType>;
  release(): Promise<void>;
  /** The public API's: writes the profile of a session made with enableProfiling. */
  endProfiling?(): void;
};

interface RawMetadata {
  name: string;
  isTensor: boolean;
  symbolicDimensions: string[];
  shape: number[];
  type: number;
}

interface NativeSession {
  loadModel(path: string, options: ort.InferenceSession.SessionOptions): void;
  loadModel(buffer: ArrayBuffer, byteOffset: number, byteLength: number, options: ort.InferenceSession.SessionOptions): void;
  readonly inputMetadata: RawMetadata[];
  readonly outputMetadata: RawMetadata[];
  run(feeds: ort.InferenceSession.FeedsType, fetches: Record<string, null>, options: object): ort.InferenceSession.ReturnType;
  dispose(): void;
}

type NativeBinding = { InferenceSession: new () => NativeSession };

// ONNX TensorProto data types, as onnxruntime-node names them (its backend's table).
const TYPE_NAMES: Record<number, ort.Tensor.Type> = {
  1: 'float32', 2: 'uint8', 3: 'int8', 4: 'uint16', 5: 'int16', 6: 'int32', 7: 'int64', 8: 'string', 9: 'bool',
  10: 'float16', 11: 'float64', 12: 'uint32', 13: 'uint64', 21: 'uint4', 22: 'int4',
};

let binding: NativeBinding | null | undefined;

/** onnxruntime-node's native binding, initialised; null where it is not there in the expected shape. */
function nativeBinding(): NativeBinding | null {
  if (binding === undefined) {
    binding = null;
    try {
      const m = createRequire(import.meta.url)('onnxruntime-node/dist/binding.js') as { binding?: NativeBinding; initOrt?: () => void };
      const proto = m.binding?.InferenceSession?.prototype as Partial<NativeSession> | undefined;
      if (typeof m.initOrt === 'function' && typeof proto?.run === 'function' && typeof proto.loadModel === 'function') {
        m.initOrt();
        binding = m.binding!;
      }
    } catch {
      binding = null;
    }
  }
  return binding;
}

/** Whether `session` runs its passes directly (made here), rather than through onnxruntime-node's public API. */
export function runsDirectly(session: OrtSession): boolean {
  return session instanceof DirectSession;
}

/** Whether CPU sessions can be made here (else createCpuSession falls back to the public API). */
export function hasDirectRuns(): boolean {
  return nativeBinding() !== null;
}

class DirectSession implements OrtSession {
  readonly inputNames: string[];
  readonly outputNames: string[];
  readonly inputMetadata: ort.InferenceSession.ValueMetadata[];
  readonly outputMetadata: ort.InferenceSession.ValueMetadata[];
  /** Every output, fetched (the public API's default). */
  private readonly fetches: Record<string, null>;
  private released = false;

  constructor(private readonly native: NativeSession) {
    [this.inputNames, this.inputMetadata] = metadataOf(native.inputMetadata);
    [this.outputNames, this.outputMetadata] = metadataOf(native.outputMetadata);
    this.fetches = Object.fromEntries(this.outputNames.map((n) => [n, null]));
  }

  // Async for the caller's sake (the same contract as the public session); the pass runs before this returns.
  async run(feeds: ort.InferenceSession.FeedsType, options: ort.InferenceSession.RunOptions = {}): Promise<ort.InferenceSession.ReturnType> {
    if (this.released) throw new Error('session.run after release');
    for (const name of this.inputNames) if (feeds[name] === undefined) throw new Error(`input '${name}' is missing in 'feeds'.`);
    return this.native.run(feeds, this.fetches, options);
  }

  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    this.native.dispose();
  }
}

function metadataOf(raw: RawMetadata[]): [string[], ort.InferenceSession.ValueMetadata[]] {
  const names = raw.map((m) => m.name);
  const metadata = raw.map((m): ort.InferenceSession.ValueMetadata => {
    if (!m.isTensor) return { name: m.name, isTensor: false };
    const type = TYPE_NAMES[m.type];
    if (type === undefined) throw new Error(`${m.name}: unsupported data type ${m.type}`);
    return { name: m.name, isTensor: true, type, shape: m.shape.map((d, i) => (d === -1 ? m.symbolicDimensions[i] : d)) };
  });
  return [names, metadata];
}

/** A CPU session over a model file or its bytes: direct runs where the binding allows, else the public API's (also
 * where the binding fails to load the model: a model that cannot load fails there with the public API's error). */
export async function createCpuSession(model: string | Uint8Array, options: ort.InferenceSession.SessionOptions): Promise<OrtSession> {
  const b = nativeBinding();
  const cpu = { ...options, executionProviders: ['cpu'] };
  if (b) {
    const native = new b.InferenceSession();
    try {
      if (typeof model === 'string') native.loadModel(model, cpu);
      else native.loadModel(model.buffer as ArrayBuffer, model.byteOffset, model.byteLength, cpu);
      return new DirectSession(native);
    } catch {
      // Fall through: the public API loads it or says why not.
      try {
        native.dispose();
      } catch {
        // never loaded
      }
    }
  }
  return typeof model === 'string' ? ort.InferenceSession.create(model, cpu) : ort.InferenceSession.create(model, cpu);
}
