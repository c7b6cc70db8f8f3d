/**
 * `actorserve agent`: an agent host's start-up process for a distributed servable
 * (`distributed.startupAgents`): starts one rank process per local rank, each loading its model
 * shard and registering with the coordinator, and runs until SIGINT/SIGTERM or until the
 * coordinator ends the servable (docs/distributed.md).
 */
import { startupAgents } from '../actors/agent-startup.js';
import type { SSLConfig } from '../engine/ssl-config.js';
import { UsageError, parseArgsStrict } from './args.js';
import { cipherMode, readKeyFile } from './encrypt.js';

export const AGENT_USAGE = `Usage: actorserve agent --distributed-address HOST:PORT --model-files F0,F1,... [options]

Starts the ranks of a distributed servable that this host runs (its entries in the rank table
the server was started with): one process per rank, each loading its model file(s) with ONNX
Runtime and registering with the coordinator at --distributed-address. A rank process that
dies is started again. Exits when the coordinator stops the servable or stays unreachable.

Options:
  --distributed-address ADDR   the coordinator (distributed.startServable's distributedAddress)
  --model-files LIST           one model file per local rank, comma-separated, in rank order;
                               several subgraphs of one rank joined by ';'
  --group-config-files LIST    one per rank (checked readable; unused by ONNX ranks)
  --agent-start-port N         local rank i listens on port N+i (default 7000)
  --agent-ip IP                the address ranks listen on (with --rank-start)
  --rank-start N               a rank of this host in the rank table (with --agent-ip)
  --dec-key-file FILE          key of encrypted model files; --dec-mode AES-GCM|AES-CBC
  --coordinator-retry-seconds S  how long to keep trying to reach the coordinator (default 60)
  --ssl-certificate FILE       TLS on the agent link (when the coordinator has an sslConfig): the
                               PEM certificate the ranks present (they listen, and dial the
                               coordinator), with --ssl-private-key FILE
  --ssl-custom-ca FILE         the PEM CA that the coordinator's certificate must chain to
                               (default: the system's roots)
  --ssl-verify-client          mutual TLS: the ranks require the coordinator's client certificate,
                               chained to --ssl-custom-ca
  -h, --help                   show this help
`;

function integerFlag(value: string | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(n)) throw new UsageError(`${flag} takes a non-negative integer, got '${value}'`);
  return n;
}

/** The --ssl-* flags as an sslConfig (its files are checked by startupAgents); undefined without them. */
function sslFlags(values: { 'ssl-certificate'?: string; 'ssl-private-key'?: string; 'ssl-custom-ca'?: string; 'ssl-verify-client'?: boolean }): SSLConfig | undefined {
  const certificate = values['ssl-certificate'];
  const privateKey = values['ssl-private-key'];
  if (certificate === undefined && privateKey === undefined) {
    if (values['ssl-custom-ca'] !== undefined || values['ssl-verify-client']) throw new UsageError('--ssl-custom-ca and --ssl-verify-client need --ssl-certificate and --ssl-private-key');
    return undefined;
  }
  if (certificate === undefined || privateKey === undefined) throw new UsageError('--ssl-certificate and --ssl-private-key must be given together');
  return {
    certificate,
    privateKey,
    ...(values['ssl-custom-ca'] !== undefined ? { customCa: values['ssl-custom-ca'] } : {}),
    ...(values['ssl-verify-client'] ? { verifyClient: true } : {}),
  };
}

export async function agentCommand(argv: string[]): Promise<number> {
  const { values } = parseArgsStrict({
    args: argv,
    options: {
      'distributed-address': { type: 'string' },
      'model-files': { type: 'string' },
      'group-config-files': { type: 'string' },
      'agent-start-port': { type: 'string' },
      'agent-ip': { type: 'string' },
      'rank-start': { type: 'string' },
      'dec-key-file': { type: 'string' },
      'dec-mode': { type: 'string' },
      'coordinator-retry-seconds': { type: 'string' },
      'ssl-certificate': { type: 'string' },
      'ssl-private-key': { type: 'string' },
      'ssl-custom-ca': { type: 'string' },
      'ssl-verify-client': { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(AGENT_USAGE);
    return 0;
  }
  if (!values['distributed-address']) throw new UsageError('--distributed-address is required');
  if (!values['model-files']) throw new UsageError('--model-files is required');
  const modelFiles = values['model-files'].split(',').map((f) => (f.includes(';') ? f.split(';') : f));
  const agentStartPort = integerFlag(values['agent-start-port'], '--agent-start-port');
  const rankStart = integerFlag(values['rank-start'], '--rank-start');
  const retry = integerFlag(values['coordinator-retry-seconds'], '--coordinator-retry-seconds');
  const sslConfig = sslFlags(values);
  const agents = await startupAgents({
    distributedAddress: values['distributed-address'],
    modelFiles,
    ...(values['group-config-files'] ? { groupConfigFiles: values['group-config-files'].split(',') } : {}),
    ...(agentStartPort !== undefined ? { agentStartPort } : {}),
    ...(values['agent-ip'] !== undefined ? { agentIp: values['agent-ip'] } : {}),
    ...(rankStart !== undefined ? { rankStart } : {}),
    ...(values['dec-key-file'] ? { decKey: await readKeyFile(values['dec-key-file']), decMode: cipherMode(values['dec-mode'], '--dec-mode') } : {}),
    ...(retry !== undefined ? { coordinatorRetrySeconds: retry } : {}),
    ...(sslConfig ? { sslConfig } : {}),
  });
  const list = agents.ranks.map((r) => `rank ${r.rankId} on ${r.address} (pid ${r.pid})`).join(', ');
  process.stderr.write(`[actorserve agent] ranks registered: ${list}\n`);
  const onSignal = (): void => void agents.stop();
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const reason = await agents.closed;
  process.off('SIGINT', onSignal);
  process.off('SIGTERM', onSignal);
  process.stderr.write(`[actorserve agent] all ranks ended: ${reason}\n`);
  return 0;
}
