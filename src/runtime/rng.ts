// A seedable random number generator (xoshiro128**), one per request: the same seed gives the same text.
import { randomInt } from 'node:crypto';

export interface Rng {
  /** Uniform in [0, 1). */
  next(): number;
}

export class Xoshiro128 implements Rng {
  private s = new Uint32Array(4);

  constructor(seed: number = randomInt(0, 2 ** 31)) {
    // splitmix32 expands the seed into the 128-bit state (never all zero).
    let x = seed >>> 0;
    for (let i = 0; i < 4; i++) {
      x = (x + 0x9e3779b9) >>> 0;
      let z = x;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
      this.s[i] = (z ^ (z >>> 16)) >>> 0;
    }
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

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}
