// MindSpore's URL routing through the route table, and listen-address parsing (pure functions).
import t, { type Test } from 'tap';
import { mindsporeRoutes } from '../../../dist/transports/rest/mindspore-routes.js';
import { METADATA_ROUTES } from '../../../dist/transports/rest/metadata-routes.js';
import { PROBE_ROUTES } from '../../../dist/transports/rest/probe-routes.js';
import { RouteTable } from '../../../dist/transports/rest/route-table.js';
import { formatListenAddress as formatAddress, parseListenAddress } from '../../../dist/transports/listen-address.js';

const parseAddress = (a: string) => parseListenAddress(a, 'RESTful server');

/** The table a server builds (server.ts): MindSpore's routes, then the probes. */
const table = new RouteTable([...mindsporeRoutes(), ...PROBE_ROUTES]);
const USAGE = 'use POST /model/<servable>[/version/<n>]:<method>';

/** The parameters of a predict URL (failing the test when it is not one). */
function predictParams(t: Test, url: string): unknown {
  const m = table.match('post', url);
  if (m.kind !== 'route') {
    t.fail(`${url}: ${m.message}`);
    return undefined;
  }
  t.equal(m.route.path.text, '/model/<servable>[/version/<n>]:<method>', `${url} is the predict route`);
  return m.params;
}

t.test('predict routes', async (t) => {
  t.same(predictParams(t, '/model/add:add_common'), { servable: 'add', version: 0, method: 'add_common' });
  t.same(predictParams(t, '/model/add/version/3:add_common'), { servable: 'add', version: 3, method: 'add_common' });
  t.same(predictParams(t, '/version/3/model/add:add_common'), { servable: 'add', version: 3, method: 'add_common' });
  t.same(predictParams(t, '/model/my%20servable:do%3Ait'), { servable: 'my servable', version: 0, method: 'do:it' });
  t.same(predictParams(t, '/model/add:a:b'), { servable: 'add', version: 0, method: 'a:b' }, 'the method is everything after the first colon');
  t.same(predictParams(t, '/model/version_test:m'), { servable: 'version_test', version: 0, method: 'm' }, "a servable named with 'version' is fine");
  t.same(predictParams(t, '/model/add/version/007:m'), { servable: 'add', version: 7, method: 'm' });
});

t.test('bad predict URLs are 400 with the reason', async (t) => {
  const cases: [string, RegExp][] = [
    ['/model', /names no servable/],
    ['/model/', /names no servable/],
    ['/model:m', /names no servable/],
    ['/model//version/1:m', /names no servable/],
    ['/model/add', /names no method/],
    ['/model/add/', /names no method/],
    ['/model/add/version/1', /names no method/],
    ['/model/add:', /names no method after ':'/],
    ['/model/add/version/x:m', /version "x" is not an integer/],
    ['/model/add/version/:m', /version "" is not an integer/],
    ['/model/add/version/4294967295:m', /not an integer in \[0, 4294967294\]/],
    ['/model/add/extra:m', /does not have the expected form/],
    ['/version/1/model/add', /does not have the expected form/],
    ['/model/%E0%A4%A:m', /invalid percent-encoding/],
  ];
  for (const [url, message] of cases) t.match(table.match('post', url), { kind: 'refused', status: 400, message }, url);
  t.same(
    table.match('post', '/model/add'),
    { kind: 'refused', status: 400, message: `bad predict URL "/model/add": it names no method (expected ':<method>' at the end); ${USAGE}` },
    'the whole message',
  );
});

t.test('other routes', async (t) => {
  t.match(table.match('get', '/healthz'), { kind: 'route', route: { method: 'get', path: { text: '/healthz' } } });
  t.match(table.match('get', '/readyz'), { kind: 'route', route: { method: 'get', path: { text: '/readyz' } } });
  t.match(table.match('get', '/metrics'), { kind: 'route', route: { method: 'get', path: { text: '/metrics' } } });
  t.same(table.match('post', '/readyz'), { kind: 'refused', status: 405, message: '/readyz only answers GET', allow: 'GET' });
  t.same(table.match('get', '/model/add:m'), { kind: 'refused', status: 405, message: `predict URLs only answer POST; ${USAGE}`, allow: 'POST' });
  t.match(table.match('delete', '/model'), { kind: 'refused', status: 405 }, 'the method is checked before the URL form');
  t.same(table.match('post', '/models/add:m'), {
    kind: 'refused',
    status: 404,
    message: `there is nothing at "/models/add:m"; ${USAGE}, or GET /healthz, /readyz, /metrics`,
  });
  t.match(table.match('get', '/x'.repeat(200)), { kind: 'refused', status: 404, message: /…" \(400 characters\)/ }, 'long URLs are cut in messages');
});

t.test('GET /model/<servable> is metadata: a pattern that does not answer a method passes the path on to the next owner', async (t) => {
  const withMetadata = new RouteTable([...mindsporeRoutes(), ...METADATA_ROUTES, ...PROBE_ROUTES]);
  t.match(withMetadata.match('get', '/model/add'), { kind: 'route', route: { method: 'get', path: { text: '/model/<servable>[/version/<n>]' } }, params: { servable: 'add', version: 0 } });
  t.match(withMetadata.match('get', '/model/my%20add/version/3'), { kind: 'route', params: { servable: 'my add', version: 3 } });
  t.match(withMetadata.match('get', '/model/add/version/x'), { kind: 'refused', status: 400, message: /bad model metadata URL/ });
  t.same(withMetadata.match('post', '/model/add'), table.match('post', '/model/add'), 'POST stays with predict');
  t.same(withMetadata.match('get', '/model/add:m'), table.match('get', '/model/add:m'), 'a predict URL is not metadata');
  t.match(withMetadata.match('post', '/model/add:m'), { kind: 'route', route: { method: 'post' } });
});

t.test('addresses', async (t) => {
  t.same(parseAddress('127.0.0.1:1500'), { kind: 'tcp', host: '127.0.0.1', port: 1500 });
  t.same(parseAddress('0.0.0.0:0'), { kind: 'tcp', host: '0.0.0.0', port: 0 });
  t.same(parseAddress('localhost:80'), { kind: 'tcp', host: '127.0.0.1', port: 80 });
  t.same(parseAddress('[::1]:65535'), { kind: 'tcp', host: '::1', port: 65535 });
  t.same(parseAddress('[::]:1'), { kind: 'tcp', host: '::', port: 1 });
  t.same(parseAddress('unix:/tmp/x.sock'), { kind: 'unix', path: '/tmp/x.sock' });
  t.same(parseAddress('unix:rel.sock'), { kind: 'unix', path: 'rel.sock' });
  const bad: [string, RegExp][] = [
    ['', /has no port/],
    ['127.0.0.1', /has no port/],
    ['127.0.0.1:65536', /port "65536" is not in 0-65535/],
    ['127.0.0.1:1e3', /port "1e3"/],
    ['256.0.0.1:80', /not an IPv4 address/],
    ['host.example:80', /not an IPv4 address/],
    ['::1:80', /must be in brackets/],
    ['[::1:80', /not an IPv4 address/],
    ['[zz]:80', /not an IPv6 address/],
    ['unix:', /path is empty/],
    [`unix:/${'a'.repeat(200)}`, /longer than 107 bytes/],
  ];
  for (const [a, message] of bad) t.throws(() => parseAddress(a), { code: 'E_INVALID_ARGUMENT', message }, a);
  t.equal(formatAddress({ kind: 'tcp', host: '::1', port: 0 }, 4242), '[::1]:4242');
  t.equal(formatAddress({ kind: 'tcp', host: '127.0.0.1', port: 0 }, 4242), '127.0.0.1:4242');
  t.equal(formatAddress({ kind: 'unix', path: '/x' }, 0), 'unix:/x');
});
