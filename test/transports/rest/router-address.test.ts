// URL routing and listen-address parsing (pure functions).
import t from 'tap';
import { route } from '../../../dist/transports/rest/router.js';
import { formatAddress, parseAddress } from '../../../dist/transports/rest/address.js';

t.test('predict routes', async (t) => {
  t.same(route('post', '/model/add:add_common'), { kind: 'predict', servable: 'add', version: 0, method: 'add_common' });
  t.same(route('post', '/model/add/version/3:add_common'), { kind: 'predict', servable: 'add', version: 3, method: 'add_common' });
  t.same(route('post', '/version/3/model/add:add_common'), { kind: 'predict', servable: 'add', version: 3, method: 'add_common' });
  t.same(route('post', '/model/my%20servable:do%3Ait'), { kind: 'predict', servable: 'my servable', version: 0, method: 'do:it' });
  t.same(route('post', '/model/add:a:b'), { kind: 'predict', servable: 'add', version: 0, method: 'a:b' }, 'the method is everything after the first colon');
  t.same(route('post', '/model/version_test:m'), { kind: 'predict', servable: 'version_test', version: 0, method: 'm' }, "a servable named with 'version' is fine");
  t.same(route('post', '/model/add/version/007:m'), { kind: 'predict', servable: 'add', version: 7, method: 'm' });
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
  for (const [url, message] of cases) t.match(route('post', url), { kind: 'error', status: 400, message }, url);
});

t.test('other routes', async (t) => {
  t.same(route('get', '/healthz'), { kind: 'healthz' });
  t.same(route('get', '/readyz'), { kind: 'readyz' });
  t.match(route('post', '/readyz'), { kind: 'error', status: 405, allow: 'GET' });
  t.match(route('get', '/model/add:m'), { kind: 'error', status: 405, allow: 'POST' });
  t.match(route('delete', '/model'), { kind: 'error', status: 405 }, 'the method is checked before the URL form');
  t.match(route('post', '/models/add:m'), { kind: 'error', status: 404 });
  t.match(route('get', '/x'.repeat(200)), { kind: 'error', status: 404, message: /…" \(400 characters\)/ }, 'long URLs are cut in messages');
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
