// llama.cpp (node-llama-cpp) on the same widened model as our server, single stream, greedy: the widened GGUF is
// written from stories260K.gguf by the same rules as the ONNX widening (src/forge/gguf.ts), and the draft is
// stories260K-draft.gguf. Rows alternate in rounds; llama.cpp at 1 and 2 threads, plain and with the draft (up to 4
// draft tokens); ours over HTTP, plain (`"speculative": false`) and the defaults. Also checks that llama.cpp's greedy
// text equals ours on the same prompts (the same model, token for token), and its own on the original file.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { llamaCppRun } from './llamacpp-lib.ts';
import { loadLlamaCpp } from './peer-engines.ts';
import { widenGguf } from '../src/forge/gguf.ts';
import { fmt, median, OUT, SHARED } from './lib.ts';

const PROMPTS = ['Once upon a time', 'Tom and Sue went to the park', 'The little dog', 'Lily saw a big red ball. She', 'One day, a boy named Tim'];

export async function llamaCppSideBySide(url: string, preset: string, tokens: number, rounds: number): Promise<Record<string, number[]>> {
  const gguf = join(OUT, `${preset}.gguf`);
  if (!existsSync(gguf)) widenGguf(join(SHARED, 'stories260K/stories260K.gguf'), gguf, preset);
  const llama = await (await loadLlamaCpp()).getLlama({ gpu: false, logLevel: 'error' });
  const texts: string[] = [];

  const llamaCpp = async (threads: number, draft: boolean) => {
    const { tps, texts: got } = await llamaCppRun(llama, gguf, { threads, draft, prompts: PROMPTS, maxTokens: tokens });
    if (threads === 1 && !draft) texts.splice(0, texts.length, ...got);
    return tps;
  };
  const ours = async (speculative: boolean) => {
    let n = 0;
    const started = performance.now();
    for (const prompt of PROMPTS) {
      const r = await fetch(`${url}/v1/completions`, { method: 'POST', headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'bench', prompt, max_tokens: tokens, temperature: 0, ...(speculative ? {} : { speculative: false }) }) });
      const json = await r.json() as { usage: { completion_tokens: number } };
      n += json.usage.completion_tokens;
    }
    return n / ((performance.now() - started) / 1000);
  };

  const rows: [string, () => Promise<number>][] = [
    ['llama.cpp, 1 thread, plain', () => llamaCpp(1, false)],
    ['llama.cpp, 2 threads, plain', () => llamaCpp(2, false)],
    ['llama.cpp, 1 thread, draft up to 4', () => llamaCpp(1, true)],
    ['llama.cpp, 2 threads, draft up to 4', () => llamaCpp(2, true)],
    ['specserve over HTTP, plain', () => ours(false)],
    ['specserve over HTTP, defaults', () => ours(true)],
  ];
  const results: Record<string, number[]> = Object.fromEntries(rows.map(([label]) => [label, []]));
  for (let round = 0; round < rounds; round++) {
    for (const [label, run] of round % 2 === 0 ? rows : [...rows].reverse()) results[label].push(await run());
  }

  // Same model, same greedy tokens: our text for each prompt against llama.cpp's, as the share of characters before
  // they first differ (llama.cpp drops the first token's leading space; fp32 kernels that sum in another order can
  // break a near-tie differently, after which the texts go apart).
  const agreed: string[] = [];
  for (const [i, prompt] of PROMPTS.entries()) {
    const r = await (await fetch(`${url}/v1/completions`, { method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'bench', prompt, max_tokens: tokens, temperature: 0 }) })).json() as { choices: { text: string }[] };
    const a = r.choices[0].text.trimStart(), b = texts[i].trimStart();
    let n = 0;
    while (n < Math.min(a.length, b.length) && a[n] === b[n]) n++;
    agreed.push(`${n}/${Math.max(a.length, b.length)}`);
  }

  // widenGguf is exact in llama.cpp's arithmetic too: the original file's greedy text, prompt by prompt, against the
  // widened one's (test/integration/quant/widen-gguf.test.ts checks the file's layout without llama.cpp).
  const original = await llamaCppRun(llama, join(SHARED, 'stories260K/stories260K.gguf'), { threads: 1, draft: false, prompts: PROMPTS, maxTokens: tokens });
  const numExact = original.texts.filter((text, i) => text === texts[i]).length;

  const m = (label: string) => median(results[label]);
  const bestPlain = Math.max(m(rows[0][0]), m(rows[1][0]));
  const bestDraft = Math.max(m(rows[2][0]), m(rows[3][0]));
  console.log(`### Against llama.cpp on ${preset}, single stream, greedy, ${PROMPTS.length} prompts x ${tokens} tokens, ${rounds} alternating rounds\n`);
  console.log('| engine | tokens/s, median [range] |');
  console.log('|---|---|');
  for (const [label] of rows) {
    const xs = results[label];
    console.log(`| ${label} | ${fmt(m(label), 0)} [${fmt(Math.min(...xs), 0)}-${fmt(Math.max(...xs), 0)}] |`);
  }
  console.log(`\nOur plain / llama.cpp's best plain: ${fmt(m(rows[4][0]) / bestPlain, 2)}x (target >= 2x); our defaults / llama.cpp's best ` +
    `speculative: ${fmt(m(rows[5][0]) / bestDraft, 2)}x (target >= 4x). Greedy text the same as llama.cpp's for the first ` +
    `${agreed.join(', ')} characters of the ${PROMPTS.length} prompts. llama.cpp's greedy text on the widened GGUF equals ` +
    `its text on stories260K.gguf for ${numExact} of ${PROMPTS.length} prompts.\n`);
  return results;
}
