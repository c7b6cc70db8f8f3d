/**
 * perf suite baseline: a bare uWebSockets.js responder, the HTTP ceiling on this machine.
 * Every POST reads its whole body and answers the `add` reply actorserve would send
 * (`{"instances":[{"y":[[2.0,2.0],[2.0,2.0]]}]}`) without looking at it.
 *
 * Prints `READY {"rest": "127.0.0.1:P"}`; SIGTERM stops it.
 */
import uws from '@trufflesuite/uws-js-unofficial';

const REPLY = '{"instances":[{"y":[[2.0,2.0],[2.0,2.0]]}]}';
const app = uws.App();
app.post('/*', (res) => {
  let aborted = false;
  res.onAborted(() => {
    aborted = true;
  });
  res.onData((_chunk, isLast) => {
    if (isLast && !aborted) res.cork(() => res.writeHeader('content-type', 'application/json').end(REPLY));
  });
});
const port = await new Promise<number>((resolve, reject) =>
  app.listen('127.0.0.1', 0, (socket) => (socket ? resolve(uws.us_socket_local_port(socket)) : reject(new Error('uWS could not listen')))),
);
process.stdout.write(`READY ${JSON.stringify({ rest: `127.0.0.1:${port}` })}\n`);
process.once('SIGTERM', () => process.exit(0));
