// Soak: many short requests (autocannon, loopback, bounded by count and time), mixed speculative/plain and
// streaming/non-streaming, against the real server process: no errors, resident memory flat. Shutdown: SIGTERM under
// load lets in-flight requests finish (or fail cleanly), refuses new connections, and exits 0.
import { describe, expect, it } from 'vitest';
import autocannon from 'autocannon';
import { spawn } from 'node:child_process';
import { resolve } from 'node:path';
import { spawnServer } from '../../helpers/server-process.ts';
import { tinyModel, earlyExitDraft } from '../../helpers/model-fixtures.ts';
import { scale, STRESS } from '../../helpers/stress.ts';
import { errors } from '../../../src/server/errors.ts';

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
    // Each attempt: whether it was sent before SIGTERM, when (Date.now(), the server's log clock), and how it ended.
    const outcomes: { before: boolean; sentAt: number; outcome: string }[] = [];
    let stop = false;
    let signalled = false;
    const worker = async () => {
      while (!stop) {
        const before = !signalled;
        const sentAt = Date.now();
        const record = (outcome: string) => outcomes.push({ before, sentAt, outcome });
        try {
          const r = await fetch(`${server.url}/v1/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
          const payload = await r.json();
          if (r.status === 200 && payload.usage.completion_tokens === 120) record('completed');
          else if (r.status === 503 && payload.error?.code === 'not_ready' && payload.error.message === errors.shuttingDown().message) record('clean 503');
          else record(`unexpected ${r.status} ${JSON.stringify(payload)}`);
        } catch (err) {
          const code = (err as { cause?: { code?: string } }).cause?.code;
          record(code === 'ECONNREFUSED' || code === 'ECONNRESET' ? `refused (${code})` : `failed ${code ?? (err as Error).message}`);
          if (code === 'ECONNREFUSED') return;
        }
      }
    };
    const loops = Array.from({ length: scale(8, 32) }, worker);
    await new Promise((r) => setTimeout(r, scale(800, 3000)));
    signalled = true;
    server.child.kill('SIGTERM');
    const code = await server.exited;
    stop = true;
    await Promise.all(loops);
    const tally = (list: typeof outcomes) => list.reduce((a: Record<string, number>, o) => ((a[o.outcome] = (a[o.outcome] ?? 0) + 1), a), {});
    // When the server began to drain: the time of its log line (it refuses requests from the same tick on).
    const line = server.log().split('\n').find((l) => l.includes('SIGTERM: no new connections'));
    expect(line).toBeDefined();
    const drainingAt = (JSON.parse(line!) as { time: number }).time;
    const inFlight = outcomes.filter((o) => o.before);
    // Sent after the signal: a request sent before the server handled it (the signal takes a moment to arrive) may
    // still have been accepted; one sent after the server began to drain may not.
    const racing = outcomes.filter((o) => !o.before && o.sentAt <= drainingAt);
    const after = outcomes.filter((o) => !o.before && o.sentAt > drainingAt);
    console.log(`[reliability] shutdown under load: sent before SIGTERM ${JSON.stringify(tally(inFlight))}; sent between the signal ` +
      `and the server's handling of it ${JSON.stringify(tally(racing))}; sent after ${JSON.stringify(tally(after))}`);
    expect(code).toBe(0);
    // Every request the server had received before the signal ran to completion. One sent just before the signal may
    // reach the server after it began to drain: that one gets the drain's refusal (a 503 answered only at admission),
    // never a reset, a cut response or a failed generation (whose 503 says it was cut short).
    expect(inFlight.some((o) => o.outcome === 'completed')).toBe(true);
    expect(inFlight.filter((o) => o.outcome !== 'completed' && o.outcome !== 'clean 503').map((o) => o.outcome)).toEqual([]);
    // Later ones got a clean 503 or a refused connection (a reset only for a connection whose request never arrived).
    const clean = (o: { outcome: string }) => o.outcome === 'clean 503' || o.outcome.startsWith('refused');
    expect(after.filter((o) => !clean(o)).map((o) => o.outcome)).toEqual([]);
    expect(racing.filter((o) => !clean(o) && o.outcome !== 'completed').map((o) => o.outcome)).toEqual([]);
    expect(after.some((o) => o.outcome === 'refused (ECONNREFUSED)')).toBe(true);
  }, 120_000);

  it('SIGTERM while the models load: exit code 0 at once (a container\'s PID 1 has no default action for it)', async () => {
    const target = tinyModel({ maxPositionEmbeddings: 512 });
    // Listening comes before loading (/health answers 503 meanwhile); the draft's chains for k = 1..4 are built during
    // the load, so the signal sent on "listening" arrives while it runs.
    const child = spawn(process.execPath, [resolve(import.meta.dirname, '../../../bin/specserve.js'), 'serve', '--port', '0',
      '--target', target, '--draft', earlyExitDraft(target, 1)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let log = '';
    const exited = new Promise<number | null>((res) => child.on('exit', (code) => res(code)));
    await new Promise<void>((res) => child.stdout!.on('data', (d: Buffer) => {
      log += d.toString();
      if (log.includes('listening at')) res();
    }));
    const loaded = log.includes('"ready"');
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    if (!loaded) expect(log).toContain('SIGTERM while loading the models: exiting');
  }, 60_000);
});
