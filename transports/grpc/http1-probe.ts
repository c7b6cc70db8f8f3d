/**
 * Whether an address answers HTTP/1.1: `actorserve infer` pointed at a REST port would
 * otherwise wait for grpc-js to give up on the HTTP/2 handshake (about 10 s against uWS) and
 * then say only "unavailable". A gRPC server answers the probe's HTTP/1.1 request with an
 * HTTP/2 GOAWAY frame or closes; an HTTP/1.1 server's reply starts with `HTTP/1.`.
 */
import { connect } from 'node:net';
import type { TargetAddress } from '../target-address.js';

/** Resolves true when the first bytes of the reply are an HTTP/1.x status line; false on anything else, an error or silence for `timeoutMs`. */
export function answersHttp1(target: TargetAddress, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = target.kind === 'unix' ? connect(target.path) : connect(target.port, target.host);
    let reply = Buffer.alloc(0);
    let done = false;
    const finish = (answer: boolean): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(answer);
    };
    const timer = setTimeout(() => finish(false), timeoutMs);
    // the probe never keeps the process alive: the call it runs beside decides when we are done
    timer.unref();
    socket.unref();
    socket.once('connect', () => socket.write('GET / HTTP/1.1\r\nHost: actorserve-infer\r\nConnection: close\r\n\r\n'));
    socket.on('data', (chunk: Buffer) => {
      reply = Buffer.concat([reply, chunk]);
      if (reply.length >= 7) finish(reply.subarray(0, 7).toString('latin1') === 'HTTP/1.');
    });
    socket.once('error', () => finish(false));
    socket.once('close', () => finish(reply.subarray(0, 7).toString('latin1') === 'HTTP/1.'));
  });
}
