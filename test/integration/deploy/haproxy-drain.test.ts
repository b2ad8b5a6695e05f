// Two replicas behind haproxy (Debian's package) running deploy/haproxy/haproxy.cfg as shipped, under continuous
// load on loopback. SIGTERM on one replica: its in-flight requests finish, the requests it refuses while draining are
// retried by the balancer on the other, it exits 0, and no client request fails. SIGKILL: only the requests it was
// streaming fail, and it leaves the pool within a second. Every loop is bounded in count and time.
import { afterAll, describe, expect, it } from 'vitest';
import { which } from '../../helpers/binaries.ts';
import { freePort, spawnServer, type ServerProcess } from '../../helpers/server-process.ts';
import { startHaproxy, type Haproxy } from '../../helpers/haproxy.ts';
import { tinyModel, earlyExitDraft } from '../../helpers/model-fixtures.ts';

const haproxy = which('haproxy', 'haproxy drain', 'haproxy');
const MAX_TOKENS = 120;

interface Outcome { id: number; stream: boolean; replica?: string; ok: boolean; detail: string; startedAt: number; endedAt: number }

/** `connections` clients, each sending one request after another until stopped. */
function startLoad(url: string, connections: number) {
  const outcomes: Outcome[] = [];
  /** Streams whose response has begun and not ended, by id: the replica that is answering them. */
  const streaming = new Map<number, string>();
  let next = 0;
  let stopped = false;
  const deadline = Date.now() + 120_000;
  const one = async (id: number, stream: boolean): Promise<Omit<Outcome, 'endedAt'>> => {
    const startedAt = Date.now();
    const body = JSON.stringify({ prompt: `request ${id}`, max_tokens: MAX_TOKENS, ignore_eos: true, stream });
    try {
      const r = await fetch(`${url}/v1/completions`, {
        method: 'POST', headers: { 'content-type': 'application/json' }, body, signal: AbortSignal.timeout(30_000),
      });
      const replica = r.headers.get('x-specserve-replica') ?? undefined;
      if (!stream) {
        const payload = await r.json();
        const ok = r.status === 200 && payload.usage?.completion_tokens === MAX_TOKENS;
        return { id, stream, replica, ok, detail: `${r.status} ${ok ? '' : JSON.stringify(payload)}`, startedAt };
      }
      if (replica) streaming.set(id, replica);
      const text = await r.text();
      const ok = r.status === 200 && text.trimEnd().endsWith('data: [DONE]');
      return { id, stream, replica, ok, detail: `${r.status} ${ok ? '' : text.slice(-200)}`, startedAt };
    } catch (err) {
      return { id, stream, replica: streaming.get(id), ok: false, detail: String((err as Error).cause ?? err), startedAt };
    } finally {
      streaming.delete(id);
    }
  };
  // Each client alternates streamed and not, starting on either, so every replica soon gets a stream whatever the
  // balancer does. (Alternating by a global count could lock into step with it: under leastconn, a client whose
  // request ends goes back to the replica it freed, and one replica could get every stream.)
  const clients = Array.from({ length: connections }, async (_, client) => {
    for (let turn = client; !stopped && next < 5000 && Date.now() < deadline; turn++) {
      const id = next++;
      outcomes.push({ ...await one(id, turn % 2 === 1), endedAt: Date.now() });
    }
  });
  return {
    outcomes, streaming,
    stop: async () => {
      stopped = true;
      await Promise.all(clients);
      return outcomes;
    },
  };
}

async function until(what: string, condition: () => boolean, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}
const onReplica = (streaming: Map<number, string>, name: string) => [...streaming].filter(([, r]) => r === name).map(([id]) => id);

describe.skipIf(!haproxy)('haproxy in front of two replicas', () => {
  const processes: ServerProcess[] = [];
  let balancer: Haproxy | undefined;
  afterAll(async () => {
    for (const p of processes) if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
    await balancer?.stop();
  });

  it('SIGTERM drains a replica with no failed request; SIGKILL fails only its streams in flight', async () => {
    const target = tinyModel({ maxPositionEmbeddings: 512 });
    const draft = earlyExitDraft(target, 1);
    const ports = [await freePort(), await freePort()];
    const replica = async (i: number) => {
      const p = await spawnServer(['--port', String(ports[i]), '--target', target, '--draft', draft, '--threads', '1', '--shutdown-timeout-ms', '20000']);
      processes.push(p);
      return p;
    };
    const [r1, r2] = await Promise.all([replica(0), replica(1)]);
    balancer = await startHaproxy(haproxy!, [`127.0.0.1:${ports[0]}`, `127.0.0.1:${ports[1]}`]);
    await Promise.all([balancer.waitFor('r1', 'UP'), balancer.waitFor('r2', 'UP')]);

    // SIGTERM while r1 is streaming.
    const load = startLoad(balancer.url, 4);
    await until('a stream on r1', () => onReplica(load.streaming, 'r1').length > 0);
    const drained = onReplica(load.streaming, 'r1');
    r1.child.kill('SIGTERM');
    const exitCode = await r1.exited;
    const exitedAt = Date.now();
    const afterExit = load.outcomes.length;
    await until('20 requests after r1 exited', () => load.outcomes.length >= afterExit + 20);
    const outcomes = await load.stop();
    const r1Stats = (await balancer.stats()).get('r1')!;
    console.log(`[haproxy] SIGTERM: ${outcomes.length} requests, ${outcomes.filter((o) => !o.ok).length} failed; ` +
      `${drained.length} stream(s) in flight on r1 finished; haproxy retried ${r1Stats.wretr} and redispatched ${r1Stats.wredis} from r1`);
    expect(exitCode).toBe(0);
    expect(outcomes.filter((o) => !o.ok)).toEqual([]);
    for (const id of drained) expect(outcomes.find((o) => o.id === id)).toMatchObject({ ok: true, replica: 'r1' });
    const sentAfterExit = outcomes.filter((o) => o.startedAt > exitedAt);
    expect(sentAfterExit.length).toBeGreaterThan(0);
    expect(sentAfterExit.every((o) => o.replica === 'r2')).toBe(true);

    // r1 back (same address), then SIGKILL on r2 while it streams.
    await replica(0);
    await balancer.waitFor('r1', 'UP');
    const load2 = startLoad(balancer.url, 4);
    await until('a stream on r2', () => onReplica(load2.streaming, 'r2').length > 0);
    const killedAt = Date.now();
    r2.child.kill('SIGKILL');
    await balancer.waitFor('r2', 'DOWN', 5000);
    const outOfPoolMs = Date.now() - killedAt;
    const afterDown = load2.outcomes.length;
    await until('20 requests after r2 left the pool', () => load2.outcomes.length >= afterDown + 20);
    const outcomes2 = await load2.stop();
    const failed = outcomes2.filter((o) => !o.ok);
    // In flight on r2 when it was killed: begun before, ended after, answered by r2 (known once its response began:
    // a request r2 had not begun to answer is retried on r1 by the balancer).
    const inFlight = outcomes2.filter((o) => o.replica === 'r2' && o.startedAt <= killedAt && o.endedAt >= killedAt);
    console.log(`[haproxy] SIGKILL: ${outcomes2.length} requests, ${failed.length} failed, ${inFlight.length} answered ` +
      `by r2 in flight when it was killed; r2 out of the pool after ${outOfPoolMs} ms`);
    expect(failed.every((o) => inFlight.includes(o)), JSON.stringify(failed)).toBe(true);
    expect(outOfPoolMs).toBeLessThan(1000);
  }, 180_000);
});
