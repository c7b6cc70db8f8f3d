/**
 * MindSpore's rank table (PROTOCOLS.md §6.2): which host (`server_id`) and device
 * (`device_id`) holds each rank of a distributed servable. Two layouts are read:
 *
 * ```json
 * {"version": "1.0", "server_count": "1", "status": "completed",
 *  "server_list": [{"server_id": "127.0.0.1", "host_nic_ip": "reserve",
 *                   "device": [{"device_id": "0", "device_ip": "192.1.27.6", "rank_id": "0"}, ...]}]}
 * ```
 * or `{"group_list": [{"instance_list": [{"server_id": ip, "rank_id": "k", "devices": [{"device_id": "d"}]}]}]}`.
 *
 * Only `server_id`, `device_id` and `rank_id` are used; ids are strings of decimal digits in
 * canonical form ("0", "12"; not "01", "+1", " 1" or a JSON number). The rules are MindSpore's,
 * each with its own message naming the entry and the rule:
 * - rank ids run 0, 1, 2, … in file order;
 * - the number of ranks equals the servable's declared `rankSize`, and `rankSize % stageSize == 0`;
 * - device ids are unique per server and below 8 (MindSpore's devices per machine).
 * MindSpore's further rule for `stageSize > 1` (groups of 8 ranks per server, device ids 0…7 in
 * order) is an Ascend constraint that ONNX Runtime ranks do not have: it is not enforced.
 */
import { readFile } from 'node:fs/promises';
import { ServingError } from './errors.js';

/** One rank of the table. */
export interface RankEntry {
  readonly rankId: number;
  /** The host that runs the rank (an IP address or a host name). */
  readonly serverId: string;
  readonly deviceId: number;
}

export interface RankTable {
  /** Ranks in rank order (entry i has rankId i). */
  readonly ranks: readonly RankEntry[];
}

/** Most devices one server may hold (MindSpore's limit per machine). */
export const MAX_DEVICES_PER_SERVER = 8;

function invalid(source: string, problem: string): ServingError {
  return new ServingError('E_CONFIG_INVALID', `rank table ${source}: ${problem}`);
}

type Json = Record<string, unknown>;

function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** A decimal id string in canonical form, as a number; throws naming `where` otherwise. */
function decimalId(value: unknown, field: string, where: string, source: string): number {
  if (value === undefined || value === null || value === '') throw invalid(source, `${where}: '${field}' is missing or empty`);
  if (typeof value !== 'string') {
    throw invalid(source, `${where}: '${field}' must be a string of decimal digits (like "0"), got ${JSON.stringify(value)}`);
  }
  if (!/^(0|[1-9][0-9]*)$/.test(value) || !Number.isSafeInteger(Number(value))) {
    throw invalid(source, `${where}: '${field}' must be a string of decimal digits without sign, spaces or leading zeros, got ${JSON.stringify(value)}`);
  }
  return Number(value);
}

function serverId(value: unknown, where: string, source: string): string {
  if (value === undefined || value === null || value === '') throw invalid(source, `${where}: 'server_id' is missing or empty`);
  if (typeof value !== 'string') throw invalid(source, `${where}: 'server_id' must be a string (the host's address), got ${JSON.stringify(value)}`);
  return value;
}

function nonEmptyList(value: unknown, field: string, where: string, source: string): unknown[] {
  if (value === undefined || value === null) throw invalid(source, `${where}: '${field}' is missing`);
  if (!Array.isArray(value)) throw invalid(source, `${where}: '${field}' must be a list, got ${typeof value}`);
  if (value.length === 0) throw invalid(source, `${where}: '${field}' is empty`);
  return value;
}

/** Reads the entries of a `server_list` table in file order. */
function serverListRanks(list: unknown[], source: string): { rankId: number; serverId: string; deviceId: number; where: string }[] {
  return list.flatMap((server, s) => {
    const at = `server_list[${s}]`;
    if (!isObject(server)) throw invalid(source, `${at} must be an object`);
    const host = serverId(server.server_id, at, source);
    return nonEmptyList(server.device, 'device', at, source).map((device, d) => {
      const where = `${at}.device[${d}] (server '${host}')`;
      if (!isObject(device)) throw invalid(source, `${where} must be an object`);
      return {
        serverId: host,
        deviceId: decimalId(device.device_id, 'device_id', where, source),
        rankId: decimalId(device.rank_id, 'rank_id', where, source),
        where,
      };
    });
  });
}

/** Reads the entries of a `group_list` table in file order. */
function groupListRanks(list: unknown[], source: string): { rankId: number; serverId: string; deviceId: number; where: string }[] {
  return list.flatMap((group, g) => {
    const at = `group_list[${g}]`;
    if (!isObject(group)) throw invalid(source, `${at} must be an object`);
    return nonEmptyList(group.instance_list, 'instance_list', at, source).map((instance, i) => {
      const where = `${at}.instance_list[${i}]`;
      if (!isObject(instance)) throw invalid(source, `${where} must be an object`);
      const host = serverId(instance.server_id, where, source);
      const devices = nonEmptyList(instance.devices, 'devices', where, source);
      if (devices.length !== 1) throw invalid(source, `${where}: 'devices' must hold exactly one device (one rank per instance), it holds ${devices.length}`);
      const device = devices[0];
      if (!isObject(device)) throw invalid(source, `${where}.devices[0] must be an object`);
      return {
        serverId: host,
        deviceId: decimalId(device.device_id, 'device_id', `${where}.devices[0]`, source),
        rankId: decimalId(instance.rank_id, 'rank_id', where, source),
        where: `${where} (server '${host}')`,
      };
    });
  });
}

/**
 * Parses a rank table's JSON text and checks the rules that need no servable (ids, order,
 * devices per server). `source` names it in errors (the file's path).
 */
export function parseRankTable(text: string, source = 'rank table'): RankTable {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw invalid(source, `not valid JSON (${(err as Error).message})`);
  }
  if (!isObject(doc)) throw invalid(source, 'must be a JSON object with a server_list (or group_list)');
  let entries;
  if (doc.server_list !== undefined) entries = serverListRanks(nonEmptyList(doc.server_list, 'server_list', 'the table', source), source);
  else if (doc.group_list !== undefined) entries = groupListRanks(nonEmptyList(doc.group_list, 'group_list', 'the table', source), source);
  else throw invalid(source, "has no 'server_list' (nor the alternative 'group_list')");

  const seen = new Map<string, string>();
  entries.forEach((e, i) => {
    if (e.rankId !== i) {
      throw invalid(source, `${e.where}: rank_id is "${e.rankId}" but rank ids must run 0, 1, 2, … in file order: this entry must be rank "${i}"`);
    }
    if (e.deviceId >= MAX_DEVICES_PER_SERVER) {
      throw invalid(source, `${e.where}: device_id "${e.deviceId}" of rank ${i} must be below ${MAX_DEVICES_PER_SERVER} (devices per server)`);
    }
    const key = `${e.serverId}\0${e.deviceId}`;
    const first = seen.get(key);
    if (first !== undefined) {
      throw invalid(source, `${e.where}: rank ${i} uses device_id "${e.deviceId}" on server '${e.serverId}', which ${first} already uses`);
    }
    seen.set(key, `rank ${i}`);
  });
  return { ranks: entries.map(({ rankId, serverId, deviceId }) => ({ rankId, serverId, deviceId })) };
}

/** Checks a table against the servable's declaration: `rankSize` ranks, `stageSize` dividing it. */
export function checkRankTable(table: RankTable, rankSize: number, stageSize: number, source = 'rank table'): void {
  if (table.ranks.length !== rankSize) {
    throw invalid(source, `holds ${table.ranks.length} ranks but the servable declares rankSize ${rankSize}`);
  }
  if (rankSize % stageSize !== 0) {
    throw invalid(source, `rankSize ${rankSize} is not a multiple of stageSize ${stageSize}`);
  }
}

/** Reads, parses and checks a rank table file. */
export async function readRankTable(file: string, rankSize: number, stageSize: number): Promise<RankTable> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new ServingError('E_CONFIG_INVALID', `cannot read rank table file '${file}': ${(err as Error).message}`);
  }
  const table = parseRankTable(text, `'${file}'`);
  checkRankTable(table, rankSize, stageSize, `'${file}'`);
  return table;
}
