// npm run loadtest -- with no flags: autocannon against the real server process (loopback only, bounded by time): a
// few prompt sizes, temperature 0 and 0.8, concurrency 1/4/16, speculation on and off. Prints requests/s, latency
// p50/p90/p99, generated tokens/s (from the responses' usage) and draft acceptance (from /metrics).
// With flags, one load shaped by them (loadtest-shaped.ts), against --url or a server this starts:
//   npm run loadtest -- --url http://127.0.0.1:8000 --connections 4 --duration 5 [--model M] [--max-tokens N]
//                       [--stream] [--chat] [--prompts FILE] [--temperature T]
import autocannon from 'autocannon';
import { parseArgs } from 'node:util';
import { readPrompts, shapedLoad } from './loadtest-shaped.ts';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fmt, machine, SHARED, stories, storiesDraft } from './lib.ts';

const { values: flags } = parseArgs({
  options: {
    url: { type: 'string' }, model: { type: 'string' }, connections: { type: 'string' }, duration: { type: 'string' },
    'max-tokens': { type: 'string' }, stream: { type: 'boolean' }, chat: { type: 'boolean' }, prompts: { type: 'string' },
    temperature: { type: 'string' },
  },
  strict: true,
});
const PROMPTS = {
  short: 'Once upon a time',
  long: 'Once upon a time, there was a little girl named Lily. She loved to play outside in the park. One day, she saw a big, red ball. ' +
    'She wanted to play with it, but it was too high. Lily asked her mom for help.',
};
const DURATION_S = Number(process.env.LOADTEST_SECONDS ?? 4);
if (flags.url) {
  await shaped(flags.url);
  process.exit(0);
}
const useStories = existsSync(join(SHARED, 'stories260K'));
const target = useStories ? stories() : undefined;
const draft = useStories ? storiesDraft() : undefined;
const model = useStories ? 'stories260K' : 'specserve-demo';
const PORT = 18000 + Math.floor(Math.random() * 1000);

const args = ['bin/specserve.js', 'serve', '--port', String(PORT), '--log-level', 'warn', ...(target ? ['--target', target, '--draft', draft!] : [])];
const server = spawn(process.execPath, args, { cwd: resolve(import.meta.dirname, '..'), stdio: ['ignore', 'inherit', 'inherit'] });
const url = `http://127.0.0.1:${PORT}`;
for (let i = 0; ; i++) {
  try {
    if ((await fetch(`${url}/health`)).ok) break;
  } catch { /* not up yet */ }
  if (i > 200) throw new Error('server did not start');
  await new Promise((r) => setTimeout(r, 100));
}

async function shaped(at: string): Promise<void> {
  await shapedLoad({
    url: at, model: flags.model, connections: Number(flags.connections ?? 4), durationS: Number(flags.duration ?? 10),
    maxTokens: Number(flags['max-tokens'] ?? 64), stream: flags.stream ?? false, chat: flags.chat ?? false,
    temperature: Number(flags.temperature ?? 0), prompts: flags.prompts ? readPrompts(flags.prompts) : Object.values(PROMPTS),
  });
}
if (Object.keys(flags).length > 0) {
  await shaped(url);
  server.kill('SIGTERM');
  process.exit(0);
}

async function metric(name: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  return Number(text.match(new RegExp(`^${name} (\\S+)$`, 'm'))?.[1] ?? 0);
}


console.log(`## loadtest — ${model}${useStories ? ' + stories260K-draft' : ' demo pair'} (${machine()})\n`);
console.log(`autocannon, ${DURATION_S} s per row, max_tokens 64, server process separate from the load generator.\n`);
console.log('| prompt | temperature | concurrency | speculation | req/s | p50 ms | p90 ms | p99 ms | gen tok/s | acceptance | errors |');
console.log('|---|---|---|---|---|---|---|---|---|---|---|');
for (const [promptName, prompt] of Object.entries(PROMPTS)) {
  for (const temperature of [0, 0.8]) {
    for (const connections of [1, 4, 16]) {
      for (const speculative of [true, false]) {
        const drafted0 = await metric('specserve_spec_decode_num_draft_tokens_total');
        const accepted0 = await metric('specserve_spec_decode_num_accepted_tokens_total');
        let generated = 0;
        const body = JSON.stringify({ model, prompt, max_tokens: 64, temperature, speculative });
        const result = await autocannon({
          url: `${url}/v1/completions`, connections, duration: DURATION_S, method: 'POST',
          headers: { 'content-type': 'application/json' }, body,
          requests: [{ method: 'POST', onResponse: (status: number, resBody: string) => {
            if (status === 200) generated += JSON.parse(resBody).usage.completion_tokens;
          } }],
        });
        const drafted = (await metric('specserve_spec_decode_num_draft_tokens_total')) - drafted0;
        const accepted = (await metric('specserve_spec_decode_num_accepted_tokens_total')) - accepted0;
        const errors = result.errors + result.non2xx;
        console.log(`| ${promptName} | ${temperature} | ${connections} | ${speculative ? 'on' : 'off'} | ${fmt(result.requests.average, 1)} | ` +
          `${fmt(result.latency.p50, 0)} | ${fmt(result.latency.p90, 0)} | ${fmt(result.latency.p99, 0)} | ${fmt(generated / DURATION_S, 0)} | ` +
          `${drafted ? `${fmt((accepted / drafted) * 100, 0)}%` : '-'} | ${errors} |`);
      }
    }
  }
}
server.kill('SIGTERM');
