// A batch's KV home when its company changes (append-kv-cache.ts): rows that leave, newcomers that join, rows that
// grow or roll back, in any order, against a reference of what each cache was given. Where the rows that stay are
// all of their home's users, in order, they are laid out again inside its buffer (no new memory); otherwise they move.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { AppendKvCache } from '../../../src/runtime/append-kv-cache.ts';
import { KvBufferPool } from '../../../src/runtime/kv-buffer-pool.ts';

interface Dims { layers: number; heads: number; hd: number }

/** Caches sharing one pool, each with the values it was given per position (block, head, dimension). */
class Batch {
  readonly pool = new KvBufferPool('float32');
  readonly given = new Map<AppendKvCache, Float32Array[]>();
  private counter = 1;
  constructor(readonly d: Dims) {}

  make(): AppendKvCache {
    const c = new AppendKvCache(this.d.layers, this.d.heads, this.d.hd, 'float32', this.pool);
    this.given.set(c, []);
    return c;
  }

  /** One pass of `caches` adding `counts[b]` positions to row b (at most `added`). Returns the home. */
  pass(caches: AppendKvCache[], added: number, counts: number[]) {
    const home = AppendKvCache.homeFor(caches, added);
    const { layers, heads, hd } = this.d;
    const width = heads * hd;
    const B = caches.length;
    const kv = new Float32Array(2 * layers * B * added * width);
    for (let i = 0; i < kv.length; i++) kv[i] = this.counter++;
    caches.forEach((c, b) => {
      const mine = this.given.get(c)!;
      mine.length = c.length; // what a rollback dropped
      for (let i = 0; i < counts[b]; i++) {
        const position = new Float32Array(2 * layers * width);
        for (let p = 0; p < 2 * layers; p++) position.set(kv.subarray(((p * B + b) * added + i) * width, ((p * B + b) * added + i + 1) * width), p * width);
        mine.push(position);
      }
      c.append(kv, B, added, b, counts[b]);
    });
    return home;
  }

  leave(c: AppendKvCache): void {
    c.clear();
    this.given.delete(c);
  }

  /** Every live cache's slots hold what it was given, up to its length. */
  check(): void {
    const { layers, heads, hd } = this.d;
    for (const [c, mine] of this.given) {
      const place = c.place;
      if (c.length === 0) continue;
      const { home, row } = place!;
      for (let i = 0; i < c.length; i++) {
        for (let p = 0; p < 2 * layers; p++) {
          for (let h = 0; h < heads; h++) {
            const at = ((row * heads + h) * home.capacity + i) * hd;
            const got = Array.from(home.blocks[p].subarray(at, at + hd));
            const want = Array.from(mine[i].subarray((p * heads + h) * hd, (p * heads + h + 1) * hd));
            if (got.join() !== want.join()) throw new Error(`position ${i}, block ${p}, head ${h}: ${got} != ${want}`);
          }
        }
      }
    }
  }
}

describe('KV homes when a batch changes company', () => {
  it('property: rows leaving, joining, reordered, growing and rolled back keep exactly their positions', () => {
    const op = fc.record({
      leave: fc.array(fc.boolean(), { maxLength: 6 }),
      join: fc.integer({ min: 0, max: 2 }),
      joinLength: fc.integer({ min: 1, max: 12 }),
      shuffle: fc.option(fc.integer({ min: 1, max: 5 }), { freq: 5 }),
      rollback: fc.array(fc.integer({ min: 0, max: 3 }), { maxLength: 6 }),
      added: fc.integer({ min: 1, max: 5 }),
    });
    fc.assert(fc.property(fc.record({ layers: fc.integer({ min: 1, max: 2 }), heads: fc.integer({ min: 1, max: 3 }), hd: fc.integer({ min: 1, max: 3 }) }),
      fc.array(op, { minLength: 1, maxLength: 25 }), (d, ops) => {
        const batch = new Batch(d);
        let running: AppendKvCache[] = [];
        for (const o of ops) {
          running = running.filter((c, i) => {
            if (!o.leave[i]) return true;
            batch.leave(c);
            return false;
          });
          for (let j = 0; j < o.join; j++) {
            const c = batch.make();
            batch.pass([c], o.joinLength, [o.joinLength]); // its prefill, alone
            running.push(c);
          }
          if (o.shuffle !== null && running.length > 1) running.push(...running.splice(0, o.shuffle % running.length));
          running.forEach((c, i) => c.rollback(Math.max(0, c.length - (o.rollback[i] ?? 0))));
          if (running.length > 0) batch.pass(running, o.added, running.map((_, i) => 1 + ((i + o.added) % o.added)));
          batch.check();
        }
      }), { numRuns: 300 });
  });

  it('a row that leaves, and a newcomer after the rows that stay, relay the batch inside its buffer', () => {
    // 2 layers x 4 heads x 64 dims: 4 rows of 200 positions are a large home (over 4 MB), made with room to grow.
    const batch = new Batch({ layers: 2, heads: 4, hd: 64 });
    const rows = Array.from({ length: 4 }, () => batch.make());
    rows.forEach((c) => batch.pass([c], 200, [200]));
    const home = batch.pass(rows, 1, [1, 1, 1, 1]);
    batch.leave(rows[1]);
    const left = batch.pass([rows[0], rows[2], rows[3]], 1, [1, 1, 1]);
    expect([left.rows, left.all.buffer === home.all.buffer]).toEqual([3, true]);
    batch.check();
    const newcomer = batch.make();
    batch.pass([newcomer], 50, [50]);
    const joined = batch.pass([rows[0], rows[2], rows[3], newcomer], 2, [2, 1, 2, 1]);
    expect([joined.rows, joined.all.buffer === home.all.buffer]).toEqual([4, true]);
    batch.check();
    // Rows out of their order move into other memory, and still keep their positions.
    const swapped = batch.pass([rows[2], rows[0], rows[3], newcomer], 1, [1, 1, 1, 1]);
    expect(swapped.all.buffer === home.all.buffer).toBe(false);
    batch.check();
  });

  it('rows that would move both ways (one left, two joined) move into new memory instead, every position kept', () => {
    const batch = new Batch({ layers: 2, heads: 4, hd: 64 });
    const rows = Array.from({ length: 3 }, () => batch.make());
    rows.forEach((c) => batch.pass([c], 280, [280]));
    const home = batch.pass(rows, 1, [1, 1, 1]); // a large home, with room for more rows
    batch.leave(rows[1]);
    const [d, e] = [batch.make(), batch.make()];
    batch.pass([d], 5, [5]);
    batch.pass([e], 7, [7]);
    const four = batch.pass([rows[0], rows[2], d, e], 1, [1, 1, 1, 1]);
    expect(four.all.buffer === home.all.buffer).toBe(false); // row 2 moves down in block 0, up in the others
    batch.check();
  });

  it('rows that stay take a home sized for them, not in a buffer far larger', () => {
    const batch = new Batch({ layers: 2, heads: 4, hd: 64 });
    const [long, short] = [batch.make(), batch.make()];
    batch.pass([long], 600, [600]);
    batch.pass([short], 20, [20]);
    const both = batch.pass([long, short], 1, [1, 1]);
    batch.leave(long);
    const alone = batch.pass([short], 1, [1]);
    expect(alone.capacity).toBeLessThan(64); // not the long row's 600-odd slots
    expect(alone.all.buffer === both.all.buffer).toBe(false); // a buffer for 600 would be far too large
    batch.check();
    // Eight rows of 150 positions, seven finish: the last moves into a buffer sized for it, not the batch's.
    const rows = Array.from({ length: 8 }, () => batch.make());
    rows.forEach((c) => batch.pass([c], 150, [150]));
    const eight = batch.pass(rows, 1, rows.map(() => 1));
    rows.slice(0, 7).forEach((c) => batch.leave(c));
    const last = batch.pass([rows[7]], 1, [1]);
    expect(last.all.buffer === eight.all.buffer).toBe(false);
    batch.check();
  });

  it('a home another cache still lives in is not relaid', () => {
    const batch = new Batch({ layers: 1, heads: 2, hd: 2 });
    const [a, b, c] = [batch.make(), batch.make(), batch.make()];
    const home = batch.pass([a, b, c], 3, [3, 3, 3]);
    const ab = batch.pass([a, b], 1, [1, 1]); // c still lives in the old home
    expect(ab.all.buffer === home.all.buffer).toBe(false);
    expect(c.place!.home).toBe(home);
    batch.check();
  });
});
