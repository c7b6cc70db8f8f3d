// TLS on the agent link, with real processes: a coordinator (distributed.startServable with an
// sslConfig, mutual TLS) and `actorserve agent` with the --ssl-* flags (2 rank processes, which
// listen with TLS and dial the coordinator with TLS) serve a request; agents with a wrong CA,
// with none (the system's roots), with a certificate the coordinator does not trust, or without
// TLS are refused with errors that say TLS; bad certificate files are refused up front.
import t from 'tap';
import path from 'node:path';
import { ServingServer } from '../../dist/server.js';
import { ServingError } from '../../dist/engine/errors.js';
import { startupAgents, type StartupAgentsOptions } from '../../dist/actors/agent-startup.js';
import { makeCerts } from '../helpers/certs.js';
import { runCli } from '../helpers/cli.js';
import { freePorts } from '../helpers/ports.js';
import { INNER, columnServable, near, until } from '../helpers/distributed.js';

const mm = columnServable('distributed-tls', 2);
t.teardown(() => mm.fx.remove());
const certs = makeCerts(path.join(mm.fx.dir, 'certs'));

const server = new ServingServer();
const logs: string[] = [];
server.log = (line) => logs.push(line);
t.teardown(() => server.stop());

const started = server.startDistributedServable(mm.fx.dir, 'mmcol', {
  rankTableJsonFile: 'rank_table.json',
  distributedAddress: '127.0.0.1:0',
  waitAgentsTimeInSeconds: 60,
  heartbeatIntervalMs: 200,
  sslConfig: { certificate: certs.peerCert, privateKey: certs.peerKey, customCa: certs.ca, verifyClient: true },
});
started.catch(() => undefined);
const listening = /servable 'mmcol': waiting for 2 agent ranks to register at (\S+) \(TLS\)/;
await until(() => logs.some((l) => listening.test(l)), 30_000, 'the coordinator');
const address = listening.exec(logs.find((l) => listening.test(l))!)![1]!;

/** startupAgents' error for these options (it must fail). */
async function refusal(options: Partial<StartupAgentsOptions>): Promise<ServingError> {
  const err = await startupAgents({ distributedAddress: address, modelFiles: mm.modelFiles, agentStartPort: 7000, log: () => undefined, ...options }).then(
    async (agents) => {
      await agents.stop();
      throw new Error('the agents started');
    },
    (e: unknown) => e,
  );
  if (!(err instanceof ServingError)) throw err;
  return err;
}

t.test('agents the coordinator cannot trust, or that cannot trust it, are refused naming TLS', async (tt) => {
  const peer = { certificate: certs.peerCert, privateKey: certs.peerKey };
  const [wrongCa, noCa, stranger, plain] = await Promise.all([
    refusal({ sslConfig: { ...peer, customCa: certs.otherCa }, coordinatorRetrySeconds: 30 }),
    refusal({ sslConfig: peer, coordinatorRetrySeconds: 30 }),
    refusal({ sslConfig: { certificate: certs.strangerCert, privateKey: certs.strangerKey, customCa: certs.ca }, coordinatorRetrySeconds: 1 }),
    refusal({ coordinatorRetrySeconds: 1 }),
  ]);
  for (const [what, err] of [['a wrong CA', wrongCa], ['no CA (the system roots)', noCa]] as const) {
    tt.match(err.message, new RegExp(`cannot reach the coordinator at ${address}: TLS handshake failed: .*certificate.*customCa`), `${what}: refused at once, naming TLS and customCa`);
  }
  tt.match(stranger.message, /no coordinator answered .*(TLS handshake failed|the link uses TLS: if the other end verifies clients)/, 'a client certificate of another CA: refused, naming TLS');
  tt.match(plain.message, /no coordinator answered .* the link is plaintext here: if the coordinator was started with an sslConfig \(TLS\), the agents need one too/, 'a plaintext agent: the error names TLS');
  tt.notOk(logs.some((l) => /rank \d+ registered/.test(l)), 'no rank registered');
});

t.test('bad certificate files are refused up front, naming the field and the file', async (tt) => {
  const missing = path.join(certs.dir, 'missing.pem');
  await tt.rejects(refusal({ sslConfig: { certificate: certs.peerCert, privateKey: certs.peerKey, customCa: missing } }).then((e) => Promise.reject(e)), {
    code: 'E_INVALID_ARGUMENT',
    message: new RegExp(`^distributed.startupAgents: sslConfig: customCa file ${missing} cannot be read`),
  });
  await tt.rejects(
    server.startDistributedServable(mm.fx.dir, 'mmcol', {
      rankTableJsonFile: 'rank_table.json',
      distributedAddress: '127.0.0.1:0',
      versionNumber: 2,
      sslConfig: { certificate: certs.peerCert, privateKey: certs.wrongKey },
    }),
    { code: 'E_INVALID_ARGUMENT', message: /^distributed servable 'mmcol': sslConfig: privateKey file .*wrong\.key does not match the certificate/ },
  );
});

t.test('agents with the right certificates register over mutual TLS and serve', async (tt) => {
  const agent = runCli([
    'agent',
    '--distributed-address', address,
    '--model-files', mm.modelFiles.join(','),
    '--agent-start-port', String(await freePorts(2)),
    '--ssl-certificate', certs.peerCert,
    '--ssl-private-key', certs.peerKey,
    '--ssl-custom-ca', certs.ca,
    '--ssl-verify-client',
  ]);
  tt.teardown(async () => {
    if (agent.child.exitCode === null && agent.child.signalCode === null) agent.child.kill('SIGTERM');
    await agent.exited;
  });
  await started;
  await agent.waitFor(/ranks registered: rank 0 .*, rank 1 /, 30_000);
  const xs = [0, 1, 2].map((k) => mm.row(k));
  const outs = await server.infer('mmcol', 'predict', xs.map((x) => ({ x: { dtype: 'float32' as const, shape: [INNER], data: x } })));
  outs.forEach((o, i) => tt.ok(near(o.y!.data as Float32Array, mm.expected(xs[i]!)), `instance ${i} = -(x @ W), over TLS both ways`));
  await server.stop();
  tt.equal(await agent.exited, 0, 'the agent exits 0 when the server stops');
});
