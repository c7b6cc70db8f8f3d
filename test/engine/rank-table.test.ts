// MindSpore's rank table: the two layouts it comes in, and one clear error per broken rule.
import t, { type Test } from 'tap';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { checkRankTable, parseRankTable, readRankTable } from '../../dist/engine/rank-table.js';
import { ServingError } from '../../dist/engine/errors.js';
import { rankTableJson } from '../../dist/servables/distributed-models.js';

type Device = { device_id?: unknown; rank_id?: unknown; device_ip?: string };

function table(servers: { server_id?: unknown; device?: unknown }[]): string {
  return JSON.stringify({ version: '1.0', server_count: String(servers.length), server_list: servers, status: 'completed' });
}

function devices(n: number, from = 0): Device[] {
  return Array.from({ length: n }, (_, i) => ({ device_id: String(i), device_ip: `192.1.27.${6 + i}`, rank_id: String(from + i) }));
}

/** Parsing `text` fails with E_CONFIG_INVALID, a message naming the file and matching `re`. */
function refuses(tt: Test, text: string, re: RegExp, what: string): void {
  let caught: unknown;
  try {
    parseRankTable(text, "'rt.json'");
  } catch (err) {
    caught = err;
  }
  tt.ok(caught instanceof ServingError && caught.code === 'E_CONFIG_INVALID', `${what}: refused with E_CONFIG_INVALID`);
  tt.match((caught as Error | undefined)?.message ?? '', re, `${what}: says which rule`);
  tt.match((caught as Error | undefined)?.message ?? '', /^rank table 'rt\.json': /, `${what}: names the file`);
}

t.test('a well-formed server_list table: ranks in order, hosts and devices', async (tt) => {
  const text = table([
    { server_id: '10.0.0.1', device: devices(2) },
    { server_id: '10.0.0.2', device: devices(2, 2) },
  ]);
  const parsed = parseRankTable(text);
  tt.same(parsed.ranks, [
    { rankId: 0, serverId: '10.0.0.1', deviceId: 0 },
    { rankId: 1, serverId: '10.0.0.1', deviceId: 1 },
    { rankId: 2, serverId: '10.0.0.2', deviceId: 0 },
    { rankId: 3, serverId: '10.0.0.2', deviceId: 1 },
  ]);
  tt.doesNotThrow(() => checkRankTable(parsed, 4, 1));
  tt.doesNotThrow(() => checkRankTable(parsed, 4, 2));
  // the generator of the bundled example writes a table that parses
  tt.equal(parseRankTable(rankTableJson(8)).ranks.length, 8);
});

t.test('the group_list layout', async (tt) => {
  const text = JSON.stringify({
    group_list: [{ instance_list: [0, 1, 2].map((r) => ({ server_id: '127.0.0.1', rank_id: String(r), devices: [{ device_id: String(r) }] })) }],
  });
  tt.same(
    parseRankTable(text).ranks.map((r) => r.deviceId),
    [0, 1, 2],
  );
  refuses(tt, JSON.stringify({ group_list: [{ instance_list: [{ server_id: 'h', rank_id: '0', devices: [] }] }] }), /'devices' is empty/, 'an instance without devices');
  refuses(
    tt,
    JSON.stringify({ group_list: [{ instance_list: [{ server_id: 'h', rank_id: '0', devices: [{ device_id: '0' }, { device_id: '1' }] }] }] }),
    /exactly one device/,
    'an instance with two devices',
  );
});

t.test('each broken rule has its own error', async (tt) => {
  refuses(tt, '{"server_list": [', /not valid JSON/, 'text that is not JSON');
  refuses(tt, '[1, 2]', /must be a JSON object/, 'a JSON list');
  refuses(tt, '{"version": "1.0"}', /no 'server_list'/, 'no server_list');
  refuses(tt, table([]), /'server_list' is empty/, 'an empty server_list');
  refuses(tt, JSON.stringify({ server_list: {} }), /'server_list' must be a list/, 'server_list not a list');
  refuses(tt, table([{ device: devices(1) }]), /server_list\[0\]: 'server_id' is missing or empty/, 'a server without server_id');
  refuses(tt, table([{ server_id: 17, device: devices(1) }]), /'server_id' must be a string/, 'a numeric server_id');
  refuses(tt, table([{ server_id: 'h' }]), /server_list\[0\]: 'device' is missing/, 'a server without device');
  refuses(tt, table([{ server_id: 'h', device: [] }]), /'device' is empty/, 'an empty device list');
  refuses(tt, table([{ server_id: 'h', device: [{ rank_id: '0' }] }]), /device\[0\] \(server 'h'\): 'device_id' is missing or empty/, 'a device without device_id');
  refuses(tt, table([{ server_id: 'h', device: [{ device_id: '0', rank_id: '' }] }]), /'rank_id' is missing or empty/, 'an empty rank_id');
  refuses(tt, table([{ server_id: 'h', device: [{ device_id: 0, rank_id: '0' }] }]), /'device_id' must be a string of decimal digits \(like "0"\), got 0/, 'a numeric device_id');
  for (const bad of ['01', '+1', ' 1', '1.0', '-1', 'one', '1e3']) {
    refuses(tt, table([{ server_id: 'h', device: [{ device_id: '0', rank_id: bad }] }]), /without sign, spaces or leading zeros/, `rank_id ${JSON.stringify(bad)}`);
  }
  refuses(tt, table([{ server_id: 'h', device: [{ device_id: '0', rank_id: '1' }] }]), /rank_id is "1" but rank ids must run 0, 1, 2, … in file order: this entry must be rank "0"/, 'ranks not starting at 0');
  refuses(
    tt,
    table([{ server_id: 'h', device: [devices(1)[0]!, { device_id: '1', rank_id: '0' }] }]),
    /device\[1\] .*: rank_id is "0" .* must be rank "1"/,
    'a duplicate rank id',
  );
  refuses(tt, table([{ server_id: 'h', device: [{ device_id: '8', rank_id: '0' }] }]), /device_id "8" of rank 0 must be below 8/, 'a device id of 8');
  refuses(
    tt,
    table([{ server_id: 'h', device: [{ device_id: '3', rank_id: '0' }, { device_id: '3', rank_id: '1' }] }]),
    /rank 1 uses device_id "3" on server 'h', which rank 0 already uses/,
    'two ranks on one device',
  );
  // the same device id on two servers is fine
  tt.doesNotThrow(() => parseRankTable(table([{ server_id: 'a', device: devices(1) }, { server_id: 'b', device: devices(1, 1) }])));
});

t.test('the table against the servable: rank count and stage size', async (tt) => {
  const parsed = parseRankTable(table([{ server_id: 'h', device: devices(4) }]));
  tt.throws(() => checkRankTable(parsed, 8, 1, "'rt.json'"), /rank table 'rt\.json': holds 4 ranks but the servable declares rankSize 8/);
  tt.throws(() => checkRankTable(parsed, 4, 3), /rankSize 4 is not a multiple of stageSize 3/);
});

t.test('readRankTable: a missing file, and the file named in errors', async (tt) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'actorserve-rank-table-'));
  tt.teardown(() => rmSync(dir, { recursive: true, force: true }));
  await tt.rejects(readRankTable(path.join(dir, 'nope.json'), 1, 1), /cannot read rank table file '.*nope\.json'/);
  const file = path.join(dir, 'rt.json');
  writeFileSync(file, rankTableJson(2));
  tt.equal((await readRankTable(file, 2, 1)).ranks.length, 2);
  await tt.rejects(readRankTable(file, 3, 1), new RegExp(`rank table '${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}': holds 2 ranks`));
});
