// Every manifest of deploy/k8s/ validated offline: each object against its JSON schema, the
// Kubernetes ones from kubernetes-models, the CRDs (KEDA ScaledObject, ServiceMonitor,
// PrometheusRule) from @kubernetes-models/keda and /prometheus-operator; then what no schema
// sees: references between the objects (selectors, Secrets, ConfigMaps, claims, ports, the
// scale target), every environment variable one the service reads, probes on the routes that
// exist, the autoscaler on the backlog metric of the real queue names, the alert rules equal to
// deploy/prometheus/, the js profile equal to the shipped one. deploy/compose.yaml too.
import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import YAML from 'yaml';
import { ConfigSchema, loadConfig } from '../../contract/config.ts';
import { IsolateProfile } from '../../contract/profile.ts';
import { executionQueueName } from '../../contract/queues.ts';

// biome-ignore lint/suspicious/noExplicitAny: parsed YAML of many shapes, checked by the schemas and the assertions
type Obj = Record<string, any>;
const DIR = 'deploy/k8s';
const files = readdirSync(DIR).filter((f) => f.endsWith('.yaml'));
const docs: Array<{ file: string; obj: Obj }> = files.flatMap((file) =>
  YAML.parseAllDocuments(readFileSync(join(DIR, file), 'utf8')).map((d) => {
    if (d.errors.length) throw new Error(`${file}: ${d.errors[0]!.message}`);
    return { file, obj: d.toJS() as Obj };
  }),
);
const all = docs.map((d) => d.obj);
const ofKind = (kind: string) => all.filter((o) => o.kind === kind);
const named = (kind: string, name: string) => ofKind(kind).find((o) => o.metadata.name === name);

/** Where the model (schema and TypeScript type) of an apiVersion/kind lives. */
function modulePath(apiVersion: string, kind: string): string {
  const [group, version] = apiVersion.includes('/') ? apiVersion.split('/') : ['', apiVersion];
  return group === 'keda.sh'
    ? `@kubernetes-models/keda/keda.sh/${version}/${kind}`
    : group === 'monitoring.coreos.com'
      ? `@kubernetes-models/prometheus-operator/monitoring.coreos.com/${version}/${kind}`
      : `kubernetes-models/${group ? `${group}/` : ''}${version}/${kind}`;
}

/**
 * The JSON schemas accept fields they do not know (as the API server's non-strict mode does), so
 * the objects are also type-checked as object literals of their kubernetes-models types: any
 * field a type does not have is an error. Returns tsc's complaints, one per offending object.
 */
function unknownFields(objects: readonly Obj[]): string[] {
  const dir = join('test-artifacts', `k8s-types-${process.pid}`);
  mkdirSync(dir, { recursive: true });
  const lines = objects.map((o, i) => `export const m${i}: T${i} = ${JSON.stringify(o)};`);
  const imports = objects.map(
    (o, i) => `import type { I${o.kind} as T${i} } from '${modulePath(o.apiVersion, o.kind)}';`,
  );
  writeFileSync(join(dir, 'manifests.ts'), [...imports, ...lines].join('\n'));
  const config = {
    target: 'esnext',
    module: 'nodenext',
    moduleResolution: 'nodenext',
    strict: true,
    noEmit: true,
    skipLibCheck: true,
    types: [],
  };
  writeFileSync(join(dir, 'tsconfig.json'), JSON.stringify({ compilerOptions: config, include: ['*.ts'] }));
  try {
    execFileSync('node_modules/.bin/tsc', ['-p', dir], { encoding: 'utf8', timeout: 60_000 });
    return [];
  } catch (e) {
    const out = (e as { stdout?: string }).stdout ?? String(e);
    return out
      .split('\n')
      .filter((l) => l.includes('error TS'))
      .map((l) => {
        const line = Number(/manifests\.ts\((\d+),/.exec(l)?.[1] ?? 0) - objects.length - 1;
        const o = objects[line];
        return `${o ? `${o.kind}/${o.metadata?.name}` : '?'}: ${l.replace(/^.*error TS\d+: /, '')}`;
      });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The model class of an apiVersion/kind, from the packages that carry the schemas. */
async function modelOf(apiVersion: string, kind: string): Promise<{ validate(): void } & Obj> {
  const path = modulePath(apiVersion, kind);
  const mod = (await import(path)) as Record<string, new (data: Obj) => { validate(): void } & Obj>;
  const Model = mod[kind];
  if (!Model) throw new Error(`no schema for ${apiVersion} ${kind} (${path})`);
  return Model as unknown as { validate(): void } & Obj;
}
const validate = async (obj: Obj): Promise<void> => {
  const Model = (await modelOf(obj.apiVersion, obj.kind)) as unknown as new (d: Obj) => { validate(): void };
  new Model(obj).validate();
};

const matches = (selector: Obj, labels: Obj = {}) =>
  Object.entries(selector.matchLabels ?? {}).every(([k, v]) => labels[k] === v) &&
  (selector.matchExpressions ?? []).every(
    (e: Obj) => e.operator === 'In' && e.values.includes(labels[e.key as string]),
  );
const deployments = ofKind('Deployment');
const podLabels = deployments.map((d) => d.spec.template.metadata.labels as Obj);
const containers = deployments.flatMap((d) => d.spec.template.spec.containers as Obj[]);
const configKeys = new Set(Object.keys(ConfigSchema.shape));

describe('deploy/k8s manifests', () => {
  it('hold the objects a deployment needs', () => {
    const kinds = all.map((o) => `${o.kind}/${o.metadata.name}`);
    for (const k of [
      'Namespace/sandgate',
      'Deployment/sandgate-api',
      'Service/sandgate-api',
      'Deployment/sandgate-runner',
      'PodDisruptionBudget/sandgate-runner',
      'RuntimeClass/gvisor',
      'Secret/sandgate-redis',
      'ScaledObject/sandgate-runner',
      'NetworkPolicy/sandgate-default-deny',
      'ServiceMonitor/sandgate',
      'PrometheusRule/sandgate',
    ])
      expect(kinds).toContain(k);
  });

  it('each object validates against its schema', async () => {
    expect(docs.length).toBeGreaterThan(15);
    for (const { file, obj } of docs) {
      try {
        await validate(obj);
      } catch (e) {
        throw new Error(`${file}: ${obj.kind}/${obj.metadata?.name}: ${(e as Error).message}`);
      }
    }
  });

  it('the validation is not vacuous: a wrong type, a missing field or a bad CRD field fails', async () => {
    const api = structuredClone(named('Deployment', 'sandgate-api')!);
    api.spec.template.spec.containers[0].ports[0].containerPort = 'eighty';
    await expect(validate(api)).rejects.toThrow(/containerPort must be integer/);
    const noSelector = structuredClone(named('Deployment', 'sandgate-runner')!);
    delete noSelector.spec.selector;
    await expect(validate(noSelector)).rejects.toThrow(/selector/);
    const scaled = structuredClone(named('ScaledObject', 'sandgate-runner')!);
    scaled.spec.triggers[0].metadata.threshold = 8;
    await expect(validate(scaled)).rejects.toThrow(/threshold must be string/);
    const rule = structuredClone(named('PrometheusRule', 'sandgate')!);
    rule.spec.groups[0].rules[0].for = 5;
    await expect(validate(rule)).rejects.toThrow();
  });

  it('no object has a field its type does not know (a misspelt field fails), checked for real', () => {
    expect(unknownFields(all)).toEqual([]);
    const misspelt = structuredClone(all);
    const runner = misspelt.find((o) => o.kind === 'Deployment' && o.metadata.name === 'sandgate-runner')!;
    runner.spec.template.spec.containers[0].readynessProbe = runner.spec.template.spec.containers[0].readinessProbe;
    const scaled = misspelt.find((o) => o.kind === 'ScaledObject')!;
    scaled.spec.minReplicas = 1;
    const found = unknownFields(misspelt);
    expect(found).toHaveLength(2);
    expect(found.join('\n')).toMatch(/Deployment\/sandgate-runner: .*readynessProbe.* does not exist/);
    expect(found.join('\n')).toMatch(/ScaledObject\/sandgate-runner: .*minReplicas.* does not exist/);
  }, 60_000);

  it('every namespaced object is in the sandgate namespace', () => {
    for (const o of all.filter((o) => !['Namespace', 'RuntimeClass'].includes(o.kind)))
      expect(o.metadata.namespace, `${o.kind}/${o.metadata.name}`).toBe('sandgate');
  });

  it('deployments: selectors match their pods, the service image, probes on real routes and ports, non-root, bounded', () => {
    for (const d of deployments) {
      const name = d.metadata.name;
      const pod = d.spec.template;
      expect(matches(d.spec.selector, pod.metadata.labels), name).toBe(true);
      expect(pod.spec.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: 10000 });
      for (const c of pod.spec.containers as Obj[]) {
        expect(c.image).toBe('sandgate/service:latest');
        expect(c.args.slice(0, 2)).toEqual(['node', 'bin/sandgate.ts']);
        const mode = c.args[2];
        expect(['api', 'runner']).toContain(mode);
        expect(c.securityContext).toMatchObject({
          allowPrivilegeEscalation: false,
          readOnlyRootFilesystem: true,
          capabilities: { drop: ['ALL'] },
        });
        for (const r of ['cpu', 'memory']) {
          expect(c.resources.requests[r], `${name} requests.${r}`).toBeDefined();
          expect(c.resources.limits[r], `${name} limits.${r}`).toBeDefined();
        }
        const ports = new Set((c.ports as Obj[]).map((p) => p.name));
        // the API serves on PORT, a runner its /healthz and /readyz beside /metrics on its metrics port
        expect(ports).toEqual(new Set([mode === 'api' ? 'http' : 'metrics']));
        expect((c.ports as Obj[])[0]!.containerPort).toBe(mode === 'api' ? 8080 : 9464);
        expect(c.livenessProbe.httpGet).toMatchObject({ path: '/healthz' });
        expect(c.readinessProbe.httpGet).toMatchObject({ path: '/readyz' });
        for (const p of [c.livenessProbe, c.readinessProbe, c.startupProbe].filter(Boolean))
          expect(ports.has(p.httpGet.port), `${name} probe port ${p.httpGet.port}`).toBe(true);
        const mounts = new Set((c.volumeMounts as Obj[]).map((m) => m.name));
        const volumes = new Map((pod.spec.volumes as Obj[]).map((v) => [v.name, v]));
        for (const m of mounts) expect(volumes.has(m), `${name} mounts ${m}`).toBe(true);
        expect((c.volumeMounts as Obj[]).find((m) => m.mountPath === '/app/data')).toBeDefined();
        expect((c.volumeMounts as Obj[]).find((m) => m.mountPath === '/var/lib/sandgate/audit-archive')).toBeDefined();
      }
    }
    // Only the Docker-profile runners hold the node's Docker socket; the gVisor runners run js only.
    const sock = (d: Obj) =>
      (d.spec.template.spec.volumes as Obj[]).some((v) => v.hostPath?.path === '/var/run/docker.sock');
    expect(deployments.filter(sock).map((d) => d.metadata.name)).toEqual(['sandgate-runner']);
    const js = named('Deployment', 'sandgate-runner-js')!;
    expect(js.spec.template.spec.runtimeClassName).toBe(named('RuntimeClass', 'gvisor')!.metadata.name);
    expect(named('RuntimeClass', 'gvisor')!.handler).toBe('runsc');
  });

  it('every environment variable is one the service reads, and the shared config loads', () => {
    for (const c of containers) {
      for (const e of c.env ?? []) expect(configKeys.has(e.name), `env ${e.name}`).toBe(true);
      for (const ref of c.envFrom ?? []) expect(named('ConfigMap', ref.configMapRef.name)).toBeDefined();
    }
    const shared = named('ConfigMap', 'sandgate-config')!.data as Record<string, string>;
    for (const k of Object.keys(shared)) expect(configKeys.has(k), `ConfigMap key ${k}`).toBe(true);
    const redisUrl = named('Secret', 'sandgate-redis')!.stringData.url;
    const admin = named('Secret', 'sandgate-admin')!.stringData.token;
    expect(() => loadConfig({ ...shared, REDIS_URL: redisUrl, SANDGATE_ADMIN_TOKEN: admin })).not.toThrow();
  });

  it('references resolve: Secrets and their keys, ConfigMaps, claims, Service and PDB selectors, target ports', () => {
    for (const c of containers)
      for (const e of c.env ?? []) {
        const ref = e.valueFrom?.secretKeyRef;
        if (!ref) continue;
        const secret = named('Secret', ref.name);
        expect(secret, `Secret ${ref.name}`).toBeDefined();
        expect(Object.keys({ ...secret!.stringData, ...secret!.data })).toContain(ref.key);
      }
    for (const d of deployments)
      for (const v of d.spec.template.spec.volumes as Obj[]) {
        if (v.persistentVolumeClaim)
          expect(named('PersistentVolumeClaim', v.persistentVolumeClaim.claimName)).toBeDefined();
        if (v.configMap) expect(named('ConfigMap', v.configMap.name)).toBeDefined();
      }
    for (const s of ofKind('Service')) {
      const pods = deployments.filter((d) =>
        matches({ matchLabels: s.spec.selector }, d.spec.template.metadata.labels),
      );
      expect(pods.length, `Service ${s.metadata.name} selects pods`).toBeGreaterThan(0);
      const portNames = new Set(
        pods.flatMap((d) => d.spec.template.spec.containers.flatMap((c: Obj) => c.ports.map((p: Obj) => p.name))),
      );
      for (const p of s.spec.ports)
        expect(portNames.has(p.targetPort), `${s.metadata.name} → ${p.targetPort}`).toBe(true);
    }
    for (const pdb of ofKind('PodDisruptionBudget'))
      expect(
        podLabels.some((l) => matches(pdb.spec.selector, l)),
        `PDB ${pdb.metadata.name}`,
      ).toBe(true);
    for (const np of ofKind('NetworkPolicy').filter(
      (n) => Object.keys(n.spec.podSelector).length > 0 && n.metadata.name !== 'sandgate-redis',
    ))
      expect(
        podLabels.some((l) => matches(np.spec.podSelector, l)),
        `NetworkPolicy ${np.metadata.name}`,
      ).toBe(true);
  });

  it('runners scale on the backlog of the real execution queues (waiting + prioritized + delayed)', () => {
    const so = named('ScaledObject', 'sandgate-runner')!;
    expect(named('Deployment', so.spec.scaleTargetRef.name)).toBeDefined();
    expect(so.spec.minReplicaCount).toBeGreaterThanOrEqual(1); // the API's readiness needs a runner per engine
    const trigger = so.spec.triggers[0];
    expect(trigger.type).toBe('prometheus');
    const query = trigger.metadata.query as string;
    expect(query).toContain('sandgate_queue_backlog');
    const queues = new RegExp(`^(?:${/queue=~"([^"]+)"/.exec(query)![1]})$`);
    for (const engine of ['isolate', 'docker'] as const) expect(executionQueueName(engine)).toMatch(queues);
    expect(query).toMatch(/max by \(queue\)/); // every API process reports the same figure
  });

  it('the ServiceMonitor scrapes ports that exist; the PrometheusRule holds deploy/prometheus/ rules exactly', () => {
    const sm = named('ServiceMonitor', 'sandgate')!;
    const services = ofKind('Service').filter((s) => matches(sm.spec.selector, s.metadata.labels));
    const ports = new Set(services.flatMap((s) => s.spec.ports.map((p: Obj) => p.name)));
    for (const e of sm.spec.endpoints) expect(ports.has(e.port), `endpoint port ${e.port}`).toBe(true);
    expect(ports).toEqual(new Set(['http', 'metrics']));
    const files = readdirSync('deploy/prometheus').filter((f) => f.endsWith('.rules.yaml'));
    const groups = files.flatMap((f) => YAML.parse(readFileSync(join('deploy/prometheus', f), 'utf8')).groups);
    const byName = (g: Obj[]) => [...g].sort((a, b) => (a.name < b.name ? -1 : 1));
    expect(byName(named('PrometheusRule', 'sandgate')!.spec.groups)).toEqual(byName(groups));
  });

  it("the gVisor runners' js profile is the shipped one", () => {
    const text = named('ConfigMap', 'sandgate-profiles-js')!.data['js.yaml'];
    const shipped = YAML.parse(readFileSync('sandbox-profiles/js.yaml', 'utf8'));
    expect(IsolateProfile.parse(YAML.parse(text))).toEqual(IsolateProfile.parse(shipped));
  });
});

describe('deploy/compose.yaml', () => {
  const compose = YAML.parse(readFileSync('deploy/compose.yaml', 'utf8'), { merge: true }) as Obj;
  it('API, two runners and Redis, healthchecked on /readyz; only runners hold the Docker socket', () => {
    expect(Object.keys(compose.services).sort()).toEqual(['api', 'redis', 'runner-1', 'runner-2']);
    for (const name of ['api', 'runner-1', 'runner-2']) {
      const s = compose.services[name];
      expect(s.image).toBe('sandgate/service:latest');
      for (const k of Object.keys(s.environment)) expect(configKeys.has(k), `${name} env ${k}`).toBe(true);
      expect(s.healthcheck.test.join(' ')).toContain('/readyz');
      expect(s.volumes).toEqual(
        expect.arrayContaining(['data:/app/data', 'audit-archive:/var/lib/sandgate/audit-archive']),
      );
      expect(s.volumes.includes('/var/run/docker.sock:/var/run/docker.sock')).toBe(name !== 'api');
      expect(s.cap_drop).toEqual(['ALL']);
    }
    expect(Object.keys(compose.volumes).sort()).toEqual(['audit-archive', 'data', 'redis']);
  });
});
