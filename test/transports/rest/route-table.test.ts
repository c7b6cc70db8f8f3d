// The route table's mechanics (pure): exact paths and path templates, 404 with the list of
// what is served, 405 with Allow, 400 from a pattern, registration order, duplicates.
import t from 'tap';
import { PathError, type PathPattern, exactPath, pathTemplate } from '../../../dist/transports/rest/path-pattern.js';
import { type NoBodyRoute, type Route, RouteTable } from '../../../dist/transports/rest/route-table.js';

/** A head route answering with its own name, so a test can see which route matched. */
function named<P>(method: 'get' | 'post' | 'put' | 'delete', path: PathPattern<P>, name: string): NoBodyRoute<P> {
  return { method, path, answer: () => ({ status: 200, contentType: 'text/plain', body: name }) };
}

/** The name of the route that `method path` reaches, or the refusal. */
function reach(table: RouteTable, method: string, path: string): unknown {
  const m = table.match(method, path);
  if (m.kind !== 'route' || m.route.codecs !== undefined) return m;
  return { name: m.route.answer(undefined as never, m.params).body, params: m.params };
}

const routes: Route<unknown>[] = [
  named('get', exactPath('/a'), 'get a'),
  named('get', pathTemplate('/things/{id}'), 'get thing'),
  named('put', pathTemplate('/things/{id}'), 'put thing'),
  named('post', pathTemplate('/things/{id}/parts/{part}'), 'post part'),
  named('delete', pathTemplate('/things/{id}/parts/{part}'), 'delete part'),
];
const table = new RouteTable(routes);

t.test('exact paths and templates', async (t) => {
  t.same(reach(table, 'get', '/a'), { name: 'get a', params: {} });
  t.same(reach(table, 'get', '/things/42'), { name: 'get thing', params: { id: '42' } });
  t.same(reach(table, 'put', '/things/42'), { name: 'put thing', params: { id: '42' } });
  t.same(reach(table, 'post', '/things/a%20b/parts/c%2Fd'), { name: 'post part', params: { id: 'a b', part: 'c/d' } }, 'parameters are percent-decoded');
  t.same(reach(table, 'delete', '/things/1/parts/2'), { name: 'delete part', params: { id: '1', part: '2' } });
});

t.test('paths no route serves are 404 with the list of routes', async (t) => {
  const nothing = (path: string): unknown => ({
    kind: 'refused',
    status: 404,
    message: `there is nothing at ${JSON.stringify(path)}; use GET /a, /things/{id}, or PUT /things/{id}, or POST /things/{id}/parts/{part}, or DELETE /things/{id}/parts/{part}`,
  });
  for (const path of ['/', '/b', '/a/', '/things', '/things/', '/things//parts/1', '/things/1/', '/things/1/parts', '/things/1/parts/2/3', '/things/1/partsx/2', '/thingsx/1']) {
    t.same(table.match('get', path), nothing(path), path);
  }
});

t.test('a wrong method is 405 with Allow listing the methods of that path', async (t) => {
  t.same(table.match('post', '/a'), { kind: 'refused', status: 405, message: '/a only answers GET', allow: 'GET' });
  t.same(table.match('delete', '/things/1'), { kind: 'refused', status: 405, message: '/things/{id} only answers GET, PUT', allow: 'GET, PUT' });
  t.same(table.match('get', '/things/1/parts/2'), {
    kind: 'refused',
    status: 405,
    message: '/things/{id}/parts/{part} only answers POST, DELETE',
    allow: 'POST, DELETE',
  });
  t.same(table.match('delete', '/things/%ZZ'), { kind: 'refused', status: 405, message: '/things/{id} only answers GET, PUT', allow: 'GET, PUT' }, 'the method is checked before the parameters are read');
});

t.test('a malformed path in a pattern is 400 with the pattern reason', async (t) => {
  t.same(table.match('get', '/things/%ZZ'), { kind: 'refused', status: 400, message: 'bad URL "/things/%ZZ": {id} holds an invalid percent-encoding' });
  const even: PathPattern<{ n: number }> = {
    text: '/even/<n>',
    owns: (p) => p.startsWith('/even/'),
    parse: (p) => {
      const n = Number(p.slice(6));
      return n % 2 === 0 ? { n } : new PathError(`${n} is odd`);
    },
    wrongMethod: (allow) => `even numbers only answer ${allow}`,
  };
  const custom = new RouteTable([named('get', even, 'even')]);
  t.same(reach(custom, 'get', '/even/4'), { name: 'even', params: { n: 4 } });
  t.same(custom.match('get', '/even/3'), { kind: 'refused', status: 400, message: '3 is odd' });
  t.same(custom.match('post', '/even/3'), { kind: 'refused', status: 405, message: 'even numbers only answer GET', allow: 'GET' }, "the pattern's 405 message");
});

t.test('registration order: exact paths first, then the first pattern that owns the path', async (t) => {
  const order = new RouteTable([
    named('get', pathTemplate('/x/{id}'), 'template'),
    named('get', { text: '/x/<anything>', owns: (p) => p.startsWith('/x/'), parse: () => ({}) }, 'prefix'),
    named('get', exactPath('/x/fixed'), 'exact'),
  ]);
  t.match(reach(order, 'get', '/x/1'), { name: 'template' });
  t.match(reach(order, 'get', '/x/1/2'), { name: 'prefix' }, 'a later pattern gets what the earlier ones do not own');
  t.match(reach(order, 'get', '/x/fixed'), { name: 'exact' }, 'an exact path wins over patterns added before it');
});

t.test('a module adds routes to a table that has some', async (t) => {
  const grown = new RouteTable([named('get', exactPath('/a'), 'get a')]);
  grown.add(named('post', exactPath('/a'), 'post a'), named('get', pathTemplate('/v2/models/{name}'), 'model'));
  t.same(reach(grown, 'post', '/a'), { name: 'post a', params: {} });
  t.same(reach(grown, 'get', '/v2/models/m'), { name: 'model', params: { name: 'm' } });
  t.match(grown.match('put', '/a'), { status: 405, allow: 'GET, POST' }, 'Allow follows added methods');
  t.match(grown.match('get', '/nope'), { status: 404, message: /; use GET \/a, \/v2\/models\/\{name\}, or POST \/a$/ }, 'the 404 list too');
});

t.test('declaring a route twice, and bad templates, are errors', async (t) => {
  t.throws(() => new RouteTable([named('get', exactPath('/a'), '1'), named('get', exactPath('/a'), '2')]), /REST route GET \/a is declared twice/);
  t.throws(() => new RouteTable([named('get', pathTemplate('/t/{id}'), '1'), named('get', pathTemplate('/t/{id}'), '2')]), /GET \/t\/\{id\} is declared twice/);
  t.throws(() => pathTemplate('things/{id}'), /must start with '\/'/);
  t.throws(() => pathTemplate('/things/x{id}'), /a \{param\} must be a whole segment/);
});

t.test("a fallback pattern answers only paths no earlier pattern owns; a pattern's encodeError shapes the table's refusals", async (t) => {
  const errorJson = (message: string): string => JSON.stringify({ error: message });
  const own = <P>(p: PathPattern<P>): PathPattern<P> => ({ ...p, encodeError: errorJson });
  const space: PathPattern<Record<string, never>> = { text: '/p/...', fallback: true, owns: (path) => path.startsWith('/p/'), parse: () => ({}), encodeError: errorJson };
  const fallbackTable = new RouteTable([
    named('post', own(pathTemplate('/p/{name}/run')), 'run'),
    named('get', own(pathTemplate('/p/{name}')), 'meta'),
    named('get', space, 'nothing'),
    named('post', space, 'nothing'),
  ]);
  t.same(reach(fallbackTable, 'post', '/p/x/run'), { name: 'run', params: { name: 'x' } });
  t.same(reach(fallbackTable, 'get', '/p/x/other'), { name: 'nothing', params: {} }, 'a path no other pattern owns reaches the fallback');
  t.same(reach(fallbackTable, 'get', '/p/x/run'), {
    kind: 'refused',
    status: 405,
    message: '/p/{name}/run only answers POST',
    allow: 'POST',
    body: '{"error":"/p/{name}/run only answers POST"}',
  }, 'a wrong method on an owned path stays a 405, in the pattern\'s error format');
  const bad = fallbackTable.match('get', '/p/%ZZ');
  t.match(bad, { kind: 'refused', status: 400, body: /^\{"error":"bad URL/ });
  t.match(fallbackTable.match('get', '/elsewhere'), { status: 404, message: /use POST \/p\/\{name\}\/run, or GET \/p\/\{name\}$/ }, 'the 404 list leaves the fallback out');
});
