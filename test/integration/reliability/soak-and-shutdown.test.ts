// Soak: many short requests (autocannon, loopback, bounded by count and time), mixed speculative/plain and
// streaming/non-streaming, against the real server process: no errors, resident memory flat. Shutdown: SIGTERM under
// load lets in-flight requests finish (or fail cleanly), refuses new connections, and exits 0.
import { describe, expect, it } from 'vitest';
import autocannon from 'autocannon';
import { spawnServer } from '../../helpers/server-process.ts';
import { tinyModel, earlyExitDraft } from '../../helpers/model-fixtures.ts';
import { scale, STRESS } from '../../helpers/stress.ts';

describe('soak', () => {
  it(`${scale(1500, 10_000)} short mixed requests: 0 errors; RSS growth ${STRESS ? 'under 5%' : 'reported'} from the 20% mark to the end`, async () => {
    const total = scale(1500, 10_000);
    const target = tinyModel({ maxPositionEmbeddings: 256, numLayers: 3 });
    const server = await spawnServer(['--target', target, '--draft', earlyExitDraft(target, 1), '--max-queue', '1024']);
    const bodies = [
      { speculative: true, stream: false }, { speculative: false, stream: false },
      { speculative: true, stream: true }, { speculative: false, stream: true },
    ].map((o, i) => JSON.stringify({ model: 'model', prompt: `hello ${i}`, max_tokens: 8, temperature: i % 2 ? 0.8 : 0, ...o }));
    let done = 0;
    let rssAtMark = 0;
    const mark = Math.floor(total * 0.2);
    const result = await autocannon({
      url: `${server.url}/v1/completions`, connections: 8, amount: total, timeout: 30, method: 'POST',
      headers: { 'content-type': 'application/json' },
      requests: bodies.map((body) => ({ method: 'POST' as const, body, onResponse: () => {
        if (++done === mark) rssAtMark = server.rss();
      } })),
    });
    const rssEnd = server.rss();
    server.child.kill('SIGTERM');
    expect(await server.exited).toBe(0);
    const growth = (rssEnd - rssAtMark) / rssAtMark;
    console.log(`[reliability] soak: ${result.requests.total} requests, ${result.errors} errors, ${result.non2xx} non-2xx, ` +
      `${result.timeouts} timeouts; RSS ${(rssAtMark / 2 ** 20).toFixed(1)} MiB at request ${mark} -> ${(rssEnd / 2 ** 20).toFixed(1)} MiB at ${total} ` +
      `(${(growth * 100).toFixed(2)}%); ${result.requests.average.toFixed(0)} req/s`);
    expect(result.requests.total).toBe(total);
    expect(result.errors + result.non2xx + result.timeouts).toBe(0);
    if (STRESS) expect(growth).toBeLessThan(0.05);
  }, 600_000);
});

describe('shutdown under load', () => {
  it('SIGTERM: in-flight requests complete or fail cleanly, new connections are refused, exit code 0', async () => {
    const target = tinyModel({ maxPositionEmbeddings: 512 });
    const server = await spawnServer(['--target', target, '--draft', 'ngram', '--max-batch', '4', '--max-queue', '64']);
    const body = JSON.stringify({ model: 'model', prompt: 'a b c', max_tokens: 120, ignore_eos: true });
    const outcomes: string[] = [];
    let stop = false;
    const worker = async () => {
      while (!stop) {
        try {
          const r = await fetch(`${server.url}/v1/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
          const payload = await r.json();
          if (r.status === 200 && payload.usage.completion_tokens === 120) outcomes.push('completed');
          else if (r.status === 503 && payload.error?.code === 'not_ready') outcomes.push('clean 503');
          else outcomes.push(`unexpected ${r.status} ${JSON.stringify(payload)}`);
        } catch (err) {
          const code = (err as { cause?: { code?: string } }).cause?.code;
          outcomes.push(code === 'ECONNREFUSED' ? 'refused' : `failed ${code ?? (err as Error).message}`);
          if (code === 'ECONNREFUSED') return;
        }
      }
    };
    const loops = Array.from({ length: scale(8, 32) }, worker);
    await new Promise((r) => setTimeout(r, scale(800, 3000)));
    const before = outcomes.length;
    server.child.kill('SIGTERM');
    const code = await server.exited;
    stop = true;
    await Promise.all(loops);
    console.log(`[reliability] shutdown under load: ${before} completed before SIGTERM; after: ` +
      JSON.stringify(outcomes.slice(before).reduce((a: Record<string, number>, o) => ((a[o] = (a[o] ?? 0) + 1), a), {})));
    expect(code).toBe(0);
    expect(outcomes.filter((o) => !['completed', 'clean 503', 'refused'].includes(o))).toEqual([]);
    expect(outcomes.slice(before)).toContain('completed'); // requests in flight at SIGTERM finished
    expect(outcomes).toContain('refused');
    expect(server.log()).toMatch(/SIGTERM: no new connections/);
  }, 120_000);
});
