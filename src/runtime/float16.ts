// float16 bits -> float32, through a 65,536-entry table built once (ORT returns float16 tensors as Uint16Array).
let table: Float32Array | null = null;

function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 31) return mant ? NaN : sign * Infinity;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

export function halfToFloatArray(src: Uint16Array, dst = new Float32Array(src.length)): Float32Array {
  if (!table) {
    table = new Float32Array(65536);
    for (let i = 0; i < 65536; i++) table[i] = halfToFloat(i);
  }
  for (let i = 0; i < src.length; i++) dst[i] = table[src[i]];
  return dst;
}
