// /metrics after real requests: prefill and decode separated, promtool's lint, the Grafana dashboard's PromQL
// naming only exported metrics, and a real Prometheus server scraping it.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { post, startServer, type TestServer } from '../../helpers/test-server.ts';
import { tinyModel, earlyExitDraft } from '../../helpers/model-fixtures.ts';
import { scratchDir } from '../../helpers/shared-models.ts';
import { which } from '../../helpers/binaries.ts';
import { freePort } from '../../helpers/server-process.ts';

const DASHBOARD = resolve(import.meta.dirname, '../../../docker/grafana/dashboards/specserve.json');

describe('metrics', () => {
  let server: TestServer;
  let text: string;
  beforeAll(async () => {
    const target = tinyModel({ seed: 4, numLayers: 3 });
    server = await startServer({ target, draft: earlyExitDraft(target, 1), numSpeculativeTokens: 3 });
    for (const stream of [false, true]) {
      for (const speculative of [true, false]) {
        const r = await post(`${server.url}/v1/completions`, { model: 'model', prompt: 'hello there', max_tokens: 12, temperature: 0, stream, speculative });
        expect(r.status).toBe(200);
      }
    }
    // A lone greedy stream drafts and verifies in one fused pass (reported as verify), as does an unseeded sampled one;
    // a seeded sampled one drafts apart (as in a batch).
    const sampled = await post(`${server.url}/v1/completions`, { model: 'model', prompt: 'hello there', max_tokens: 12, temperature: 0.8, seed: 1, ignore_eos: true });
    expect(sampled.status).toBe(200);
    text = await (await fetch(`${server.url}/metrics`)).text();
  });
  afterAll(() => server.close());

  const value = (line: RegExp) => Number(text.match(line)?.[1] ?? NaN);

  it('separates prefill from decode, per request and per forward pass', () => {
    expect(value(/^specserve_request_prefill_time_seconds_count (\d+)$/m)).toBe(5);
    expect(value(/^specserve_request_decode_time_seconds_count (\d+)$/m)).toBe(5);
    expect(value(/^specserve_forward_duration_seconds_count\{phase="prefill"\} (\d+)$/m)).toBe(5);
    expect(value(/^specserve_forward_duration_seconds_count\{phase="verify"\} (\d+)$/m)).toBeGreaterThan(0);
    expect(value(/^specserve_forward_duration_seconds_count\{phase="draft"\} (\d+)$/m)).toBeGreaterThan(0);
    expect(value(/^specserve_forward_duration_seconds_count\{phase="decode"\} (\d+)$/m)).toBeGreaterThan(0);
    expect(value(/^specserve_generation_tokens_total (\d+)$/m)).toBe(60);
    expect(value(/^specserve_spec_decode_num_draft_tokens_total (\d+)$/m)).toBeGreaterThan(0);
    // The draft length chosen for every sequence at every decode step: 0 for the `speculative: false` requests.
    expect(value(/^specserve_spec_decode_draft_length_bucket\{le="0"\} (\d+)$/m)).toBeGreaterThan(0);
    expect(value(/^specserve_spec_decode_draft_length_sum (\d+)$/m)).toBeGreaterThan(0);
    expect(value(/^specserve_spec_decode_draft_length_count (\d+)$/m)).toBeGreaterThan(value(/^specserve_spec_decode_draft_length_bucket\{le="0"\} (\d+)$/m));
    expect(text).toMatch(/^specserve_model_info\{model="model",role="target",dtype="fp32",device="cpu"\} 1$/m);
    expect(text).toMatch(/^specserve_time_to_first_token_seconds_bucket\{le="0.001"\} \d+$/m);
    expect(text).not.toMatch(/nodejs_active_handles_total/);
  });

  it("every PromQL expression of the Grafana dashboard names only metrics that /metrics exports", () => {
    const dashboard = JSON.parse(readFileSync(DASHBOARD, 'utf8'));
    const exported = new Set([...text.matchAll(/^([a-z_:][a-z0-9_:]*)(?:\{| )/gm)].map((m) => m[1]));
    const exprs: string[] = dashboard.panels.flatMap((p: { targets: { expr: string }[] }) => p.targets.map((t) => t.expr));
    expect(exprs.length).toBeGreaterThanOrEqual(10);
    const FUNCTIONS = new Set(['histogram_quantile', 'sum', 'by', 'rate', 'le', 'phase']);
    for (const expr of exprs) {
      const names = [...expr.replace(/\[[^\]]*\]/g, '').matchAll(/[a-z_][a-z0-9_]*/g)].map((m) => m[0]).filter((n) => !FUNCTIONS.has(n));
      expect(names.length).toBeGreaterThan(0);
      for (const name of names) expect(exported, `${name} in "${expr}"`).toContain(name);
    }
  });

  const promtool = which('promtool', 'promtool check metrics');
  it.skipIf(!promtool)('passes `promtool check metrics`', () => {
    const r = spawnSync(promtool!, ['check', 'metrics'], { input: text, encoding: 'utf8' });
    expect(r.stdout + r.stderr).toBe('');
    expect(r.status).toBe(0);
  });

  const prometheus = which('prometheus', 'real Prometheus scrape');
  it.skipIf(!prometheus)('a real Prometheus server scrapes it: prefill and decode histograms have samples (PromQL)', async () => {
    const dir = scratchDir('prometheus');
    const port = await freePort();
    const target = new URL(server.url).host;
    writeFileSync(join(dir, 'prometheus.yml'),
      `global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: specserve\n    static_configs:\n      - targets: ["${target}"]\n`);
    const child: ChildProcess = spawn(prometheus!, [`--config.file=${join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${port}`], { stdio: 'ignore' });
    try {
      const query = async (q: string): Promise<number | null> => {
        try {
          const r = await (await fetch(`http://127.0.0.1:${port}/api/v1/query?query=${encodeURIComponent(q)}`)).json();
          return r.data?.result?.[0] ? Number(r.data.result[0].value[1]) : null;
        } catch {
          return null;
        }
      };
      const deadline = Date.now() + 30_000;
      let prefill: number | null = null;
      let decode: number | null = null;
      while (Date.now() < deadline && !(prefill && decode)) {
        await new Promise((r) => setTimeout(r, 500));
        prefill = await query('sum(specserve_request_prefill_time_seconds_count{job="specserve"})');
        decode = await query('sum(specserve_forward_duration_seconds_count{job="specserve",phase=~"decode|verify"})');
      }
      expect(prefill).toBeGreaterThanOrEqual(4);
      expect(decode).toBeGreaterThan(0);
      expect(await query('up{job="specserve"}')).toBe(1);
    } finally {
      child.kill('SIGTERM');
    }
  }, 60_000);
});
