// docs/deployment.md's configs hold together: the Kubernetes grace period covers the preStop
// sleep and the drain timeout, the probes and Envoy's health checks ask /readyz and /healthz,
// the idle timeouts stay below actorserve's, the page shows the repository's Dockerfile, and
// the command line the image and the Deployment run is one `serve` accepts. (The nginx block is
// run by nginx-rolling.test.ts.)
import t from 'tap';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parseAllDocuments } from 'yaml';
import { ROOT } from '../helpers/fixtures.js';
import { runCli } from '../helpers/cli.js';

const page = readFileSync(path.join(ROOT, 'docs', 'deployment.md'), 'utf8');
const blocks = (lang: string) => [...page.matchAll(new RegExp('```' + lang + '\\n([\\s\\S]*?)```', 'g'))].map((m) => m[1]!);
const yamlDocs = (text: string) => parseAllDocuments(text).map((d) => d.toJS() as Record<string, unknown>);
/** actorserve closes keep-alive connections idle for about this long (docs/rest.md). */
const ACTORSERVE_IDLE_S = 10;

// Only the shapes these checks read.
interface Probe {
  httpGet: { path: string; port: string };
}
interface Container {
  command: string[];
  args: string[];
  ports: { name: string; containerPort: number }[];
  readinessProbe: Probe;
  livenessProbe: Probe;
  startupProbe: Probe;
  lifecycle: { preStop: { exec: { command: string[] } } };
}
interface Deployment {
  kind: 'Deployment';
  spec: { template: { spec: { terminationGracePeriodSeconds: number; containers: Container[] } } };
}
interface Service {
  kind: 'Service';
  spec: { ports: { targetPort: string }[] };
}
interface HealthCheck {
  http_health_check: { path: string };
}
interface Cluster {
  name: string;
  health_checks: HealthCheck[];
  typed_extension_protocol_options: Record<string, { common_http_protocol_options?: { idle_timeout: string } }>;
}
interface EnvoyConfig {
  static_resources: {
    clusters: Cluster[];
    listeners: { filter_chains: { filters: { typed_config: { route_config: { virtual_hosts: { routes: { route: { retry_policy: { retry_on: string } } }[] }[] } } }[] }[] }[];
  };
}

const flag = (args: readonly string[], name: string): string => {
  const i = args.indexOf(name);
  if (i < 0) throw new Error(`${name} is not among ${args.join(' ')}`);
  return args[i + 1]!;
};
const seconds = (text: string): number => {
  const m = /^(\d+(?:\.\d+)?)s$/.exec(text);
  if (!m) throw new Error(`not a duration in seconds: ${text}`);
  return Number(m[1]);
};

const kube = yamlDocs(blocks('yaml').find((b) => b.includes('kind: Deployment'))!);
const deployment = kube.find((d) => d.kind === 'Deployment') as unknown as Deployment;
const service = kube.find((d) => d.kind === 'Service') as unknown as Service;
const pod = deployment.spec.template.spec;
const container = pod.containers[0]!;
const commandLine = [...container.command, ...container.args];

t.test('Kubernetes: the grace period covers preStop and the drain; the probes ask /readyz and /healthz', async (t) => {
  const [sleep, preStopSeconds] = container.lifecycle.preStop.exec.command;
  t.equal(sleep, 'sleep');
  const drainSeconds = Number(flag(container.args, '--drain-timeout-ms')) / 1000;
  t.ok(
    pod.terminationGracePeriodSeconds >= Number(preStopSeconds) + drainSeconds + 5,
    `terminationGracePeriodSeconds ${pod.terminationGracePeriodSeconds} ≥ preStop ${preStopSeconds} s + drain ${drainSeconds} s + 5 s`,
  );
  t.equal(container.readinessProbe.httpGet.path, '/readyz');
  t.equal(container.startupProbe.httpGet.path, '/readyz');
  t.equal(container.livenessProbe.httpGet.path, '/healthz');
  const ports = Object.fromEntries(container.ports.map((p) => [p.name, p.containerPort]));
  t.equal(ports.http, Number(flag(container.args, '--rest-address').split(':')[1]), 'the http port is the REST port');
  t.equal(ports.grpc, Number(flag(container.args, '--grpc-address').split(':')[1]), 'the grpc port is the gRPC port');
  for (const probe of [container.readinessProbe, container.livenessProbe, container.startupProbe]) t.equal(probe.httpGet.port, 'http');
  t.same(service.spec.ports.map((p) => p.targetPort).sort(), Object.keys(ports).sort(), 'the Service targets both container ports');
});

t.test('Envoy: /readyz health checks, retries on resets and refused connections, idle timeout below actorserve’s', async (t) => {
  const envoy = yamlDocs(blocks('yaml').find((b) => b.includes('static_resources'))!)[0] as unknown as EnvoyConfig;
  for (const cluster of envoy.static_resources.clusters) {
    t.same(cluster.health_checks.map((h) => h.http_health_check.path), ['/readyz'], `${cluster.name}: health check on /readyz`);
    for (const options of Object.values(cluster.typed_extension_protocol_options)) {
      const idle = options.common_http_protocol_options?.idle_timeout;
      if (idle !== undefined) t.ok(seconds(idle) < ACTORSERVE_IDLE_S, `${cluster.name}: upstream idle timeout ${idle} < ${ACTORSERVE_IDLE_S} s`);
    }
  }
  const routes = envoy.static_resources.listeners.flatMap((l) =>
    l.filter_chains.flatMap((c) => c.filters.flatMap((f) => f.typed_config.route_config.virtual_hosts.flatMap((h) => h.routes))),
  );
  t.equal(routes.length, 2, 'a REST and a gRPC route');
  for (const r of routes) t.match(r.route.retry_policy.retry_on, /^(?=.*\bconnect-failure\b)(?=.*\breset\b)/, 'retries refused and reset connections');
});

t.test('nginx: the upstream keep-alive timeout is below actorserve’s idle timeout', async (t) => {
  const nginx = blocks('nginx')[0]!;
  const m = /keepalive_timeout (\d+)s;/.exec(nginx);
  t.ok(m && Number(m[1]) < ACTORSERVE_IDLE_S, `keepalive_timeout ${m?.[1]} s < ${ACTORSERVE_IDLE_S} s`);
});

t.test('the page shows the repository’s Dockerfile, which installs with the README’s two commands', async (t) => {
  const dockerfile = readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8');
  t.equal(blocks('dockerfile')[0], dockerfile, 'the same text');
  t.match(dockerfile, /^FROM node:20-bookworm$/m);
  t.match(dockerfile, /apt-get install .*cmake g\+\+/);
  t.match(dockerfile, /^RUN npm install \\\n && npm start -- --check$/m);
  const cmd = /^CMD (\[.*\])$/m.exec(dockerfile)?.[1];
  t.same(JSON.parse(cmd ?? '[]'), commandLine, 'the image runs the command line of the Deployment');
});

t.test('the command line of the image and the Deployment is one `serve` accepts', async (t) => {
  const [node, bin, ...args] = commandLine;
  t.equal(node, 'node');
  t.equal(bin, 'bin/actorserve.js');
  // --check loads and checks the servables and binds no port; one servable keeps it short
  const p = runCli([...args, '--check', '--servables', 'add']);
  const code = await p.exited;
  if (code !== 0) t.comment(p.output());
  t.equal(code, 0, 'exit 0');
});

t.test('docs/README.md and README.md link the page', async (t) => {
  t.match(readFileSync(path.join(ROOT, 'docs', 'README.md'), 'utf8'), /\]\(deployment\.md\)/);
  t.match(readFileSync(path.join(ROOT, 'README.md'), 'utf8'), /\]\(docs\/deployment\.md\)/);
});
