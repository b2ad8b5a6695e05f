// There is no Docker engine here: check the files' structure and that everything they reference exists.
import { describe, expect, it } from 'vitest';
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parse } from 'yaml';

const ROOT = resolve(import.meta.dirname, '../../..');
const DOCKER = join(ROOT, 'docker');

describe('docker/', () => {
  it.each(['Dockerfile', 'Dockerfile.cuda'])('%s: FROM first, COPY sources exist, serves on 8000', (file) => {
    const lines = readFileSync(join(DOCKER, file), 'utf8').split('\n').filter((l) => l.trim() && !l.startsWith('#'));
    expect(lines[0]).toMatch(/^FROM \S+:\S+/); // a pinned tag, never an implicit latest
    for (const line of lines.filter((l) => l.startsWith('COPY '))) {
      const sources = line.replace(/^COPY\s+(--\S+\s+)*/, '').split(/\s+/).slice(0, -1);
      for (const s of sources) expect(existsSync(join(ROOT, s)), `${file}: COPY ${s}`).toBe(true);
    }
    expect(lines.some((l) => l.startsWith('EXPOSE 8000'))).toBe(true);
    expect(lines.at(-1)).toMatch(/^CMD \["node", "bin\/specserve\.js", "serve"\]/);
  });

  it('compose: server, Prometheus scraping it, Grafana provisioned with the dashboard', () => {
    const compose = parse(readFileSync(join(DOCKER, 'docker-compose.yml'), 'utf8'));
    expect(Object.keys(compose.services).sort()).toEqual(['grafana', 'prometheus', 'specserve']);
    expect(existsSync(join(DOCKER, compose.services.specserve.build.context, compose.services.specserve.build.dockerfile))).toBe(true);
    for (const volume of [...compose.services.prometheus.volumes, ...compose.services.grafana.volumes]) {
      expect(existsSync(join(DOCKER, volume.split(':')[0])), volume).toBe(true);
    }
    const prometheus = parse(readFileSync(join(DOCKER, 'prometheus.yml'), 'utf8'));
    expect(prometheus.scrape_configs[0].static_configs[0].targets).toEqual(['specserve:8000']);
    const datasource = parse(readFileSync(join(DOCKER, 'grafana/provisioning/datasources/prometheus.yml'), 'utf8'));
    expect(datasource.datasources[0].url).toBe('http://prometheus:9090');
    const dashboard = JSON.parse(readFileSync(join(DOCKER, 'grafana/dashboards/specserve.json'), 'utf8'));
    expect(dashboard.panels.every((p: { datasource: { uid: string } }) => p.datasource.uid === datasource.datasources[0].uid)).toBe(true);
  });
});
