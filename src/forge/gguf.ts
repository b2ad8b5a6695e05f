// GGUF (llama.cpp's model file, version 3) read and written for float32 models, and function-preserving widening of
// a llama GGUF (widen.ts's rules), so that llama.cpp runs the same widened model as we do (bench:goodput).
// Layout: magic "GGUF", version, tensor count, metadata count (u64s); metadata as key (u64 length + UTF-8), value
// type (u32) and value; tensor infos as name, dimension count, dimensions (innermost first, u64s), type, offset in the
// data; then the data, each tensor at a multiple of `general.alignment` (32).
import { writeFileSync, readFileSync } from 'node:fs';
import { padMatrix, widenPresets, type WidenShape } from './widen.ts';

const ALIGNMENT = 32;
const F32 = 0;
const TYPE = { u32: 4, f32: 6, string: 8, array: 9 } as const;
// Bytes of each scalar metadata type: uint8, int8, uint16, int16, uint32, int32, float32, bool, -, -, uint64, int64, float64.
const SCALAR_BYTES: Record<number, number> = { 0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8 };

/** A metadata entry: its type and its value's bytes as they are in the file (written back unchanged). */
export interface GgufValue { type: number; raw: Uint8Array }
export interface GgufTensor { name: string; dims: number[]; data: Float32Array }
export interface Gguf { metadata: Map<string, GgufValue>; tensors: GgufTensor[] }

export function readGguf(path: string): Gguf {
  const buf = readFileSync(path);
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  let at = 0;
  const u32 = () => ((at += 4), view.getUint32(at - 4, true));
  const u64 = () => ((at += 8), Number(view.getBigUint64(at - 8, true)));
  const str = () => {
    const n = u64();
    return buf.subarray(at, (at += n)).toString('utf8');
  };
  const skipValue = (type: number): void => {
    if (type === TYPE.string) {
      const n = u64(); // (not `at += u64()`: that reads `at` before u64 moves it)
      at += n;
    }
    else if (type === TYPE.array) {
      const inner = u32();
      const n = u64();
      for (let i = 0; i < n; i++) skipValue(inner);
    } else if (SCALAR_BYTES[type] !== undefined) at += SCALAR_BYTES[type];
    else throw new Error(`${path}: unknown GGUF metadata type ${type}`);
  };
  if (buf.subarray(0, 4).toString('latin1') !== 'GGUF') throw new Error(`${path}: not a GGUF file`);
  at = 4;
  const version = u32();
  if (version !== 3) throw new Error(`${path}: GGUF version ${version}; only 3 is read`);
  const numTensors = u64();
  const numMetadata = u64();
  const metadata = new Map<string, GgufValue>();
  for (let i = 0; i < numMetadata; i++) {
    const key = str();
    const type = u32();
    const start = at;
    skipValue(type);
    metadata.set(key, { type, raw: buf.subarray(start, at) });
  }
  const infos = Array.from({ length: numTensors }, () => {
    const name = str();
    const dims = Array.from({ length: u32() }, u64);
    const type = u32();
    if (type !== F32) throw new Error(`${path}: tensor ${name} has GGML type ${type}; only float32 is read`);
    return { name, dims, offset: u64() };
  });
  const dataStart = Math.ceil(at / ALIGNMENT) * ALIGNMENT;
  const tensors = infos.map(({ name, dims, offset }) => {
    const n = dims.reduce((a, b) => a * b, 1);
    const bytes = buf.subarray(dataStart + offset, dataStart + offset + 4 * n);
    return { name, dims, data: new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength)) };
  });
  return { metadata, tensors };
}

export function writeGguf(path: string, g: Gguf): void {
  const parts: Uint8Array[] = [];
  const u32 = (v: number) => { const b = Buffer.alloc(4); b.writeUInt32LE(v); parts.push(b); };
  const u64 = (v: number) => { const b = Buffer.alloc(8); b.writeBigUInt64LE(BigInt(v)); parts.push(b); };
  const str = (s: string) => { const b = Buffer.from(s, 'utf8'); u64(b.length); parts.push(b); };
  parts.push(Buffer.from('GGUF', 'latin1'));
  u32(3);
  u64(g.tensors.length);
  u64(g.metadata.size);
  for (const [key, { type, raw }] of g.metadata) {
    str(key);
    u32(type);
    parts.push(raw);
  }
  let offset = 0;
  const offsets = g.tensors.map((t) => {
    const o = offset;
    offset = Math.ceil((o + 4 * t.data.length) / ALIGNMENT) * ALIGNMENT;
    return o;
  });
  g.tensors.forEach((t, i) => {
    str(t.name);
    u32(t.dims.length);
    for (const d of t.dims) u64(d);
    u32(F32);
    u64(offsets[i]);
  });
  const headerBytes = parts.reduce((a, p) => a + p.length, 0);
  parts.push(Buffer.alloc(Math.ceil(headerBytes / ALIGNMENT) * ALIGNMENT - headerBytes));
  g.tensors.forEach((t, i) => {
    const end = i + 1 < g.tensors.length ? offsets[i + 1] : offset;
    parts.push(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength));
    parts.push(Buffer.alloc(end - offsets[i] - t.data.byteLength));
  });
  writeFileSync(path, Buffer.concat(parts));
}

const u32Value = (v: number): GgufValue => { const b = Buffer.alloc(4); b.writeUInt32LE(v); return { type: TYPE.u32, raw: b }; };
const f32Value = (v: number): GgufValue => { const b = Buffer.alloc(4); b.writeFloatLE(v); return { type: TYPE.f32, raw: b }; };

function metaNumber(g: Gguf, key: string): number {
  const v = g.metadata.get(key);
  if (!v) throw new Error(`GGUF has no ${key}`);
  const view = new DataView(v.raw.buffer, v.raw.byteOffset, v.raw.byteLength);
  if (v.type === TYPE.u32) return view.getUint32(0, true);
  if (v.type === TYPE.f32) return view.getFloat32(0, true);
  throw new Error(`GGUF ${key} has type ${v.type}, not a number this reads`);
}

/** A llama GGUF widened to `to` (or a widen.ts preset): the same function at a larger model's cost. */
export function widenGguf(source: string, out: string, to: WidenShape | string): void {
  const shape = typeof to === 'string' ? widenPresets[to] : to;
  if (!shape) throw new Error(`unknown preset "${String(to)}"`);
  const g = readGguf(source);
  const d = metaNumber(g, 'llama.embedding_length');
  const i = metaNumber(g, 'llama.feed_forward_length');
  const L = metaNumber(g, 'llama.block_count');
  const heads = metaNumber(g, 'llama.attention.head_count');
  const kvHeads = metaNumber(g, 'llama.attention.head_count_kv');
  const hd = d / heads;
  const { hiddenSize: D, intermediateSize: I, numLayers: NL } = shape;
  if (D < d || I < i || NL < L || D % hd !== 0 || (D / hd) % (heads / kvHeads) !== 0) throw new Error(`cannot widen ${d}/${i}/${L} to ${D}/${I}/${NL}`);
  const KV = (D / hd / (heads / kvHeads)) * hd;
  // Each weight's new [inner, outer] dimensions (GGUF lists the innermost first: [in, out] for a projection).
  const shapeOf = (name: string, rows: number): [number, number] => {
    if (name === 'token_embd.weight' || name === 'output.weight') return [D, rows];
    if (/attn_[kv]\.weight$/.test(name)) return [D, KV];
    if (/(attn_q|attn_output)\.weight$/.test(name)) return [D, D];
    if (/ffn_(gate|up)\.weight$/.test(name)) return [D, I];
    if (/ffn_down\.weight$/.test(name)) return [I, D];
    throw new Error(`widen: no rule for tensor ${name}`);
  };
  const gain = Math.sqrt(d / D);
  const widened = (t: GgufTensor): GgufTensor => {
    if (t.dims.length === 1) {
      const data = new Float32Array(D);
      t.data.forEach((x, j) => (data[j] = x * gain));
      return { name: t.name, dims: [D], data };
    }
    const [cols, rows] = t.dims;
    const [C, R] = shapeOf(t.name, rows);
    return { name: t.name, dims: [C, R], data: padMatrix(t.data, rows, cols, R, C) };
  };
  const tensors = g.tensors.map(widened);
  for (let l = L; l < NL; l++) {
    for (const t of g.tensors.filter((x) => x.name.startsWith('blk.0.'))) {
      const w = widened(t);
      tensors.push({ name: t.name.replace('blk.0.', `blk.${l}.`), dims: w.dims, data: new Float32Array(w.data.length) });
    }
  }
  const metadata = new Map(g.metadata);
  metadata.set('llama.embedding_length', u32Value(D));
  metadata.set('llama.feed_forward_length', u32Value(I));
  metadata.set('llama.block_count', u32Value(NL));
  metadata.set('llama.attention.head_count', u32Value(D / hd));
  metadata.set('llama.attention.head_count_kv', u32Value(KV / hd));
  metadata.set('llama.attention.layer_norm_rms_epsilon', f32Value(metaNumber(g, 'llama.attention.layer_norm_rms_epsilon') * (d / D)));
  writeGguf(out, { metadata, tensors });
}
