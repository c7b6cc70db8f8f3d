/**
 * Test certificates, made by the openssl CLI for each run (EC P-256), for every TLS test:
 *
 * - `ca` signs the server certificate (CN=localhost, subjectAltName DNS:localhost and
 *   IP:127.0.0.1) and the client certificates `client` (valid) and `expired` (valid from
 *   2020-01-01 to 2020-01-02: `openssl ca -startdate/-enddate`, since OpenSSL 3.0's
 *   `x509 -req -days` cannot backdate);
 * - `otherCa`, a second CA, signs `stranger`, a client certificate no server here trusts;
 * - `wrongKey` is a server key that does not match the server certificate;
 * - `peer`, signed by `ca`, is for ends that both listen and dial (the agent link of distributed
 *   servables): extendedKeyUsage serverAuth and clientAuth, the server's subjectAltName.
 *
 * Every file is written under `dir`, a folder of their own: created when missing, removed again
 * when making them fails. A machine without openssl fails with a message saying so: the TLS
 * tests never skip.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';

export interface TestCerts {
  readonly dir: string;
  /** The CA that signs the server and the good client certificates. */
  readonly ca: string;
  /** A second CA, trusted by no server. */
  readonly otherCa: string;
  readonly serverCert: string;
  readonly serverKey: string;
  /** A valid key of the same kind that does not match `serverCert`. */
  readonly wrongKey: string;
  readonly clientCert: string;
  readonly clientKey: string;
  /** A client certificate signed by `otherCa`. */
  readonly strangerCert: string;
  readonly strangerKey: string;
  /** A client certificate signed by `ca` that expired on 2020-01-02. */
  readonly expiredCert: string;
  readonly expiredKey: string;
  /** Signed by `ca`, for server and client authentication (DNS:localhost, IP:127.0.0.1). */
  readonly peerCert: string;
  readonly peerKey: string;
}

/** The validity of the expired client certificate (openssl's UTCTime form, and as dates). */
export const EXPIRED_FROM = new Date('2020-01-01T00:00:00Z');
export const EXPIRED_UNTIL = new Date('2020-01-02T00:00:00Z');

const utc = (d: Date): string => d.toISOString().replace(/[-:T]/g, '').slice(2, 14) + 'Z';

/** One config for `req` (the CAs) and `ca` (every leaf): no dependence on the system's openssl.cnf. */
function opensslConfig(dir: string): string {
  const ca = (name: string): string => `[ ${name} ]
dir = ${dir}
certificate = $dir/${name}.pem
private_key = $dir/${name}.key
database = $dir/${name}.index
serial = $dir/${name}.serial
new_certs_dir = $dir/${name}.issued
default_md = sha256
default_days = 2
policy = any_policy
unique_subject = no
copy_extensions = none
`;
  return `[ req ]
distinguished_name = dn
[ dn ]
[ ca_ext ]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[ server_ext ]
basicConstraints = CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost, IP:127.0.0.1
[ client_ext ]
basicConstraints = CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
[ peer_ext ]
basicConstraints = CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth, clientAuth
subjectAltName = DNS:localhost, IP:127.0.0.1
[ any_policy ]
commonName = supplied
${ca('ca')}
${ca('other-ca')}`;
}

function openssl(dir: string, args: readonly string[]): void {
  try {
    execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'], timeout: 30_000 });
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { stderr?: Buffer };
    if (e.code === 'ENOENT') {
      throw new Error('openssl is not installed (apt-get install openssl): the TLS tests need the openssl CLI to make their certificates', { cause: err });
    }
    throw new Error(`openssl ${args.join(' ')} failed: ${e.stderr?.toString().trim() || e.message}`, { cause: err });
  }
}

export function makeCerts(dir: string): TestCerts {
  mkdirSync(dir, { recursive: true });
  try {
    return make(dir);
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}

function make(dir: string): TestCerts {
  const f = (name: string): string => path.join(dir, name);
  const cnf = f('openssl.cnf');
  writeFileSync(cnf, opensslConfig(dir));
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  for (const ca of ['ca', 'other-ca']) {
    openssl(dir, ['req', '-config', cnf, '-x509', ...ec, '-keyout', `${ca}.key`, '-out', `${ca}.pem`, '-days', '2', '-subj', `/CN=actorserve test ${ca}`, '-extensions', 'ca_ext']);
    writeFileSync(f(`${ca}.index`), '');
    writeFileSync(f(`${ca}.serial`), '01\n');
    mkdirSync(f(`${ca}.issued`), { recursive: true });
  }
  const leaf = (name: string, cn: string, ca: string, ext: string, validity: readonly string[] = []): void => {
    openssl(dir, ['req', '-config', cnf, ...ec, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${cn}`]);
    openssl(dir, ['ca', '-config', cnf, '-name', ca, '-batch', '-notext', '-extensions', ext, '-in', `${name}.csr`, '-out', `${name}.pem`, ...validity]);
  };
  leaf('server', 'localhost', 'ca', 'server_ext');
  leaf('client', 'actorserve test client', 'ca', 'client_ext');
  leaf('peer', 'localhost', 'ca', 'peer_ext');
  leaf('stranger', 'actorserve test stranger', 'other-ca', 'client_ext');
  leaf('expired', 'actorserve test expired client', 'ca', 'client_ext', ['-startdate', utc(EXPIRED_FROM), '-enddate', utc(EXPIRED_UNTIL)]);
  openssl(dir, ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', 'wrong.key']);
  return {
    dir,
    ca: f('ca.pem'),
    otherCa: f('other-ca.pem'),
    serverCert: f('server.pem'),
    serverKey: f('server.key'),
    wrongKey: f('wrong.key'),
    clientCert: f('client.pem'),
    clientKey: f('client.key'),
    strangerCert: f('stranger.pem'),
    strangerKey: f('stranger.key'),
    expiredCert: f('expired.pem'),
    expiredKey: f('expired.key'),
    peerCert: f('peer.pem'),
    peerKey: f('peer.key'),
  };
}
