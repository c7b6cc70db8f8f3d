/**
 * nginx (the Debian package) in a child process, run as the current user: a generated main
 * config in a temp dir (pid, logs and temp paths there, `daemon off`) around the `http`-context
 * config under test.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import path from 'node:path';

export const NGINX = '/usr/sbin/nginx';

export interface Nginx {
  /** The `error_log` so far (retries and upstream failures are logged there). */
  errorLog(): string;
  /** SIGQUIT (graceful stop), then the temp dir is removed. */
  stop(): Promise<void>;
}

/** Starts nginx with `httpConfig` inside `http { }`; resolves once `port` accepts connections. */
export async function startNginx(httpConfig: string, port: number): Promise<Nginx> {
  const dir = mkdtempSync(path.join(tmpdir(), 'actorserve-nginx-'));
  const at = (name: string) => path.join(dir, name);
  // As root, nginx's workers would switch to `nobody`; keep them the current user.
  const user = process.getuid?.() === 0 ? `user ${userInfo().username};\n` : '';
  const conf = `${user}daemon off;
worker_processes 1;
pid ${at('nginx.pid')};
error_log ${at('error.log')} info;
events { worker_connections 512; }
http {
    access_log ${at('access.log')};
    client_body_temp_path ${at('client_body')};
    proxy_temp_path ${at('proxy')};
    fastcgi_temp_path ${at('fastcgi')};
    uwsgi_temp_path ${at('uwsgi')};
    scgi_temp_path ${at('scgi')};
${httpConfig}
}
`;
  writeFileSync(at('nginx.conf'), conf);
  const child = spawn(NGINX, ['-p', dir, '-c', at('nginx.conf'), '-e', at('error.log')], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (out += d));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  child.on('error', (err) => (out += `${NGINX} could not start (${err.message}); the Debian package nginx-light provides it\n`));
  const errorLog = () => {
    try {
      return readFileSync(at('error.log'), 'utf8');
    } catch {
      return '';
    }
  };
  const stop = async () => {
    if (child.exitCode === null && child.pid !== undefined) {
      child.kill('SIGQUIT');
      await exited;
    }
    rmSync(dir, { recursive: true, force: true });
  };
  const until = Date.now() + 15_000;
  while (!(await accepts(port))) {
    if (child.exitCode !== null || child.pid === undefined || Date.now() > until) {
      const log = errorLog();
      await stop();
      throw new Error(`nginx did not start listening on 127.0.0.1:${port}; output:\n${out}\nerror log:\n${log}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return { errorLog, stop };
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}
