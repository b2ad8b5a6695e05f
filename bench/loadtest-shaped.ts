// A load test shaped by flags, against a running server (--url) or one this starts: N connections in a closed loop for
// D seconds, completions or chat, streamed or not, prompts from a file. Prints what autocannon users expect
// (requests/s, latency percentiles, errors by status) and what an LLM server's users need besides (generated
// tokens/s; for streams, time to first token and inter-token percentiles).
//
//   npm run loadtest -- --url http://127.0.0.1:8000 --connections 4 --duration 5 [--model M] [--max-tokens 64]
//                       [--stream] [--chat] [--prompts FILE] [--temperature T]
import { readFileSync } from 'node:fs';
import { SingleBar, Presets } from 'cli-progress';
import { streamCompletion } from './server-lib.ts';

export interface ShapedOptions {
  url: string;
  model?: string;
  connections: number;
  durationS: number;
  maxTokens: number;
  stream: boolean;
  chat: boolean;
  temperature: number;
  prompts: string[];
}

/** Prompts from a file: a JSON array of strings, or one prompt per non-empty line. */
export function readPrompts(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const prompts = text.trimStart().startsWith('[') ? (JSON.parse(text) as unknown[]).map(String) : text.split('\n').filter((l) => l.trim());
  if (prompts.length === 0) throw new Error(`${file} holds no prompts`);
  return prompts;
}

const pct = (xs: number[], p: number) => (xs.length ? [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))] : NaN);
const ms = (x: number) => (Number.isNaN(x) ? '-' : x.toFixed(1));

export async function shapedLoad(o: ShapedOptions, out: (line: string) => void = console.log): Promise<{ requests: number; statuses: Record<string, number> }> {
  const model = o.model ?? ((await (await fetch(`${o.url}/v1/models`)).json()) as { data: { id: string }[] }).data[0].id;
  const latency: number[] = [];
  const ttft: number[] = [];
  const itl: number[] = [];
  const statuses: Record<string, number> = {};
  let tokens = 0;
  let sent = 0;
  const path = o.chat ? '/v1/chat/completions' : '/v1/completions';
  const bodyFor = (prompt: string) => ({
    model, max_tokens: o.maxTokens, temperature: o.temperature,
    ...(o.chat ? { messages: [{ role: 'user', content: prompt }] } : { prompt }),
  });
  const bar = new SingleBar({ format: 'load [{bar}] {value}/{total} s | {requests} requests', clearOnComplete: true, stream: process.stderr }, Presets.shades_classic);
  bar.start(o.durationS, 0, { requests: 0 });
  const started = performance.now();
  const end = started + o.durationS * 1000;
  const ticker = setInterval(() => bar.update(Math.min(o.durationS, Math.round((performance.now() - started) / 1000)), { requests: sent }), 250);
  await Promise.all(Array.from({ length: o.connections }, async (_, c) => {
    for (let i = 0; performance.now() < end; i++) {
      const prompt = o.prompts[(c + i * o.connections) % o.prompts.length];
      const t0 = performance.now();
      sent++;
      try {
        if (o.stream && !o.chat) {
          const r = await streamCompletion(o.url, { ...bodyFor(prompt), stream_options: { include_usage: true } });
          statuses['200'] = (statuses['200'] ?? 0) + 1;
          if (r.times.length > 0) ttft.push(r.times[0] - t0);
          r.times.slice(1).forEach((t, j) => itl.push(t - r.times[j]));
          tokens += r.usage?.completion_tokens ?? 0;
        } else {
          const r = await fetch(`${o.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(bodyFor(prompt)) });
          statuses[String(r.status)] = (statuses[String(r.status)] ?? 0) + 1;
          const json = (await r.json()) as { usage?: { completion_tokens: number } };
          tokens += json.usage?.completion_tokens ?? 0;
        }
        latency.push(performance.now() - t0);
      } catch (err) {
        const status = /request failed: (\d+)/.exec((err as Error).message)?.[1] ?? 'error';
        statuses[status] = (statuses[status] ?? 0) + 1;
      }
    }
  }));
  clearInterval(ticker);
  bar.stop();
  const seconds = (performance.now() - started) / 1000;
  const done = Object.values(statuses).reduce((a, b) => a + b, 0);
  out(`## loadtest: ${o.connections} connections, ${o.durationS} s, ${path}${o.stream ? ' (streamed)' : ''}, ${model}, max_tokens ${o.maxTokens}, ` +
    `temperature ${o.temperature}, ${o.prompts.length} prompt(s)\n`);
  out('| requests | requests/s | generated tokens/s | latency p50 / p90 / p99 / max ms | TTFT p50 / p99 ms | inter-token p50 / p99 ms |');
  out('|---|---|---|---|---|---|');
  out(`| ${done} | ${(done / seconds).toFixed(2)} | ${(tokens / seconds).toFixed(1)} | ${ms(pct(latency, 50))} / ${ms(pct(latency, 90))} / ` +
    `${ms(pct(latency, 99))} / ${ms(Math.max(...latency, NaN))} | ${ms(pct(ttft, 50))} / ${ms(pct(ttft, 99))} | ${ms(pct(itl, 50))} / ${ms(pct(itl, 99))} |`);
  out(`\nResponses by status: ${Object.entries(statuses).map(([s, n]) => `${s}: ${n}`).join(', ') || 'none'}.`);
  return { requests: done, statuses };
}
