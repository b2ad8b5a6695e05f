// deploy/kubernetes rendered by kubectl's kustomize (as `kubectl apply -k` would), every object validated against
// Kubernetes' own schemas (kubernetes-models; the Prometheus Operator's for the PodMonitor), and the parts that must
// agree with the server checked against the server's own code: its config parser, its metrics, its shutdown.
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parse, parseAllDocuments } from 'yaml';
import { Deployment } from 'kubernetes-models/apps/v1';
import { PersistentVolumeClaim, Service, ConfigMap } from 'kubernetes-models/v1';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1';
import { HorizontalPodAutoscaler } from 'kubernetes-models/autoscaling/v2';
import { PodMonitor } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1';
import { which } from '../../helpers/binaries.ts';
import { parseServerConfig } from '../../../src/server/config.ts';
import { Metrics } from '../../../src/server/metrics.ts';
import { DRAIN_GRACE_MS } from '../../../src/server/serve.ts';

const ROOT = resolve(import.meta.dirname, '../../..');
const KUSTOMIZE = join(ROOT, 'deploy/kubernetes');
const kubectl = which('kubectl', 'Kubernetes manifests', 'kubernetes-client');

type Obj = { apiVersion: string; kind: string; metadata: { name: string; labels?: Record<string, string> }; spec?: any; data?: Record<string, string> };
const MODELS: Record<string, new (data: any) => { validate(): void }> = {
  'apps/v1/Deployment': Deployment, 'v1/Service': Service, 'v1/PersistentVolumeClaim': PersistentVolumeClaim,
  'v1/ConfigMap': ConfigMap, 'policy/v1/PodDisruptionBudget': PodDisruptionBudget,
  'autoscaling/v2/HorizontalPodAutoscaler': HorizontalPodAutoscaler, 'monitoring.coreos.com/v1/PodMonitor': PodMonitor,
};

function render(dir: string): Obj[] {
  const r = spawnSync(kubectl!, ['kustomize', join(KUSTOMIZE, dir)], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`kubectl kustomize ${dir} failed: ${r.stderr}`);
  // Older kustomize leaves an empty document where a patch deleted an object.
  return parseAllDocuments(r.stdout).map((d) => d.toJS()).filter((o) => o && Object.keys(o).length > 0);
}
const one = (objs: Obj[], kind: string) => {
  const found = objs.filter((o) => o.kind === kind);
  expect(found, kind).toHaveLength(1);
  return found[0];
};
const container = (objs: Obj[]) => one(objs, 'Deployment').spec.template.spec.containers[0];
const envOf = (c: { env: Array<{ name: string; value: string }> }) => Object.fromEntries(c.env.map((e) => [e.name, e.value]));
/** The container's command line and environment, as `specserve serve` would parse them. */
function serverConfig(c: { args: string[]; env: Array<{ name: string; value: string }> }) {
  expect(c.args.slice(0, 3)).toEqual(['node', 'bin/specserve.js', 'serve']);
  return parseServerConfig(c.args.slice(3), envOf(c));
}

describe.skipIf(!kubectl)('deploy/kubernetes', () => {
  it.each(['base', 'overlays/gpu', 'overlays/demo', 'prometheus-adapter'])('%s renders, and every object validates', (dir) => {
    const objs = render(dir);
    expect(objs.length).toBeGreaterThan(0);
    for (const o of objs) {
      const Model = MODELS[`${o.apiVersion}/${o.kind}`];
      expect(Model, `${o.apiVersion} ${o.kind} has a schema here`).toBeDefined();
      expect(() => new Model(o).validate(), `${o.kind} ${o.metadata.name}`).not.toThrow();
    }
  });

  it('base: the server accepts its configuration; probes on /health never kill a pod that loads or drains', () => {
    const objs = render('base');
    const pod = one(objs, 'Deployment').spec.template.spec;
    const c = container(objs);
    const config = serverConfig(c);
    expect(config.host).toBe('0.0.0.0');
    expect(c.ports).toEqual([{ name: 'http', containerPort: config.port }]);
    expect(config.device).toBe('cpu');
    for (const probe of [c.startupProbe, c.readinessProbe, c.livenessProbe]) expect(probe.httpGet).toEqual({ path: '/health', port: 'http' });
    // /health is 503 until the models are loaded: only the startup probe runs meanwhile, for up to 30 minutes.
    expect(c.startupProbe.periodSeconds * c.startupProbe.failureThreshold).toBeGreaterThanOrEqual(30 * 60);
    // The whole shutdown fits in the grace period: preStop, then the server's drain and its deadline for requests.
    const preStop = Number(c.lifecycle.preStop.exec.command[1]);
    expect(c.lifecycle.preStop.exec.command[0]).toBe('sleep');
    const shutdownSeconds = preStop + (2 * DRAIN_GRACE_MS + config.shutdownTimeoutMs) / 1000;
    expect(pod.terminationGracePeriodSeconds).toBeGreaterThan(shutdownSeconds);
    // /health is 503 while draining: liveness must not fail the pod before the grace period ends it.
    expect(c.livenessProbe.periodSeconds * c.livenessProbe.failureThreshold).toBeGreaterThan(pod.terminationGracePeriodSeconds);
    // The model folders come read-only from the volume.
    const models = pod.volumes.find((v: { name: string }) => v.name === 'models');
    expect(one(objs, 'PersistentVolumeClaim').metadata.name).toBe(models.persistentVolumeClaim.claimName);
    const mount = c.volumeMounts.find((m: { name: string }) => m.name === 'models');
    expect(mount.readOnly).toBe(true);
    expect(config.target!.startsWith(`${mount.mountPath}/`) && config.draft!.startsWith(`${mount.mountPath}/`)).toBe(true);
    expect(c.resources.limits['nvidia.com/gpu']).toBeUndefined();
  });

  it('base: Service, PDB and PodMonitor select the pods; the HPA scales the Deployment on a queue gauge the server exports', async () => {
    const objs = render('base');
    const deployment = one(objs, 'Deployment');
    const labels = deployment.spec.template.metadata.labels;
    for (const selector of [one(objs, 'Service').spec.selector, one(objs, 'PodDisruptionBudget').spec.selector.matchLabels, one(objs, 'PodMonitor').spec.selector.matchLabels]) {
      expect(Object.entries(selector).every(([k, v]) => labels[k] === v), JSON.stringify(selector)).toBe(true);
    }
    expect(one(objs, 'Service').spec.ports[0].targetPort).toBe('http');
    expect(one(objs, 'PodMonitor').spec.podMetricsEndpoints[0]).toMatchObject({ port: 'http', path: '/metrics' });
    const hpa = one(objs, 'HorizontalPodAutoscaler');
    expect(hpa.spec.scaleTargetRef).toEqual({ apiVersion: 'apps/v1', kind: 'Deployment', name: deployment.metadata.name });
    expect(hpa.spec.minReplicas).toBeGreaterThanOrEqual(2); // a drain never leaves the Service empty
    const metric = hpa.spec.metrics[0].pods.metric.name;
    const exported = await new Metrics().render({ running: 0, waiting: 0, kvBytes: 0 });
    expect(exported).toMatch(new RegExp(`^# TYPE ${metric} gauge$`, 'm'));
    // prometheus-adapter serves that series under that name.
    const adapter = parse(one(render('prometheus-adapter'), 'ConfigMap').data!['config.yaml']);
    const rule = adapter.rules.find((r: { name: { as: string } }) => r.name.as === metric);
    expect(rule.seriesQuery).toContain(`${metric}{`);
    expect(rule.resources.overrides).toEqual({ namespace: { resource: 'namespace' }, pod: { resource: 'pod' } });
  });

  it('gpu overlay: the CUDA image, one GPU, GPU nodes, --device cuda', () => {
    const objs = render('overlays/gpu');
    const pod = one(objs, 'Deployment').spec.template.spec;
    const c = container(objs);
    expect(c.image).toBe('specserve:cuda');
    expect(c.resources.limits['nvidia.com/gpu']).toBe(1);
    expect(serverConfig(c)).toMatchObject({ device: 'cuda', draftDevice: 'cpu' });
    expect(pod.tolerations).toContainEqual({ key: 'nvidia.com/gpu', operator: 'Exists', effect: 'NoSchedule' });
    // A rollout must not need a spare GPU.
    expect(one(objs, 'Deployment').spec.strategy.rollingUpdate).toEqual({ maxSurge: 0, maxUnavailable: 1 });
    expect(render('base').map((o) => o.kind).sort()).toEqual(objs.map((o) => o.kind).sort());
  });

  it('demo overlay: serves the pair the image builds, with no model volume', () => {
    const objs = render('overlays/demo');
    expect(objs.some((o) => o.kind === 'PersistentVolumeClaim')).toBe(false);
    const c = container(objs);
    expect(one(objs, 'Deployment').spec.template.spec.volumes.map((v: { name: string }) => v.name)).toEqual(['tmp']);
    const config = serverConfig(c);
    const dockerfile = readFileSync(join(ROOT, 'docker/Dockerfile'), 'utf8');
    expect(dockerfile).toContain(`--out ${config.target} `);
    expect(dockerfile).toContain(`--out ${config.draft}\n`);
  });
});
