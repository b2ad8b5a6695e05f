// A seedable random number generator (xoshiro128**), one per request: the same seed gives the same text.
import { randomInt } from 'node:crypto';

export interface Rng {
  /** Uniform in [0, 1). */
  next(): number;
}

export class Xoshiro128 implements Rng {
  private s = new Uint32Array(4);

  /** `seed`: any safe integer (all its bits count: seeds that differ beyond the low 32 give other streams). */
  constructor(seed: number = randomInt(0, 2 ** 31)) {
    if (!Number.isSafeInteger(seed)) throw new RangeError(`seed must be a safe integer, got ${seed}`);
    // splitmix32 expands the seed's low 32 bits into the 128-bit state (never all zero); its high bits, where there
    // are any, are mixed in the same way.
    const high = Math.floor(seed / 2 ** 32);
    const low = seed - high * 2 ** 32;
    let x = low >>> 0;
    let y = high >>> 0;
    for (let i = 0; i < 4; i++) {
      x = (x + 0x9e3779b9) >>> 0;
      this.s[i] = mix(x);
      if (high !== 0) {
        y = (y + 0x7f4a7c15) >>> 0;
        this.s[i] = (this.s[i] ^ mix(y)) >>> 0;
      }
    }
    if (this.s.every((w) => w === 0)) this.s[0] = 1;
  }

  next(): number {
    const s = this.s;
    const result = Math.imul(rotl(Math.imul(s[1], 5), 7), 9) >>> 0;
    const t = s[1] << 9;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 11);
    return result / 4294967296;
  }
}

function mix(x: number): number {
  let z = x;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  return (z ^ (z >>> 16)) >>> 0;
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}
