// SPDX-License-Identifier: Apache-2.0
// history.js - what the gateway knows about a channel's history stream and
// about the live messages of a rule with `history`: stream ids and their
// order, the one script that checks and reads the history atomically, and
// the split of a live message into its stream id and the notification.
//
// It does no I/O of its own (readHistory runs one command on the client it
// is given) and knows nothing of HTTP or of SSE: see gateway.js.

import { defineScript } from 'redis';

const ID_RE = /^(\d{1,20})-(\d{1,20})$/;

// A stream entry id ("1733250000000-0") as a [ms, seq] pair of BigInts, or
// null when `text` is not one. Ids compare as pairs, never as strings:
// "999-0" < "1000-0".
export function parseId(text) {
  const m = typeof text === 'string' ? ID_RE.exec(text) : null;
  if (!m) return null;
  const id = [BigInt(m[1]), BigInt(m[2])];
  if (id[0] >= 2n ** 64n || id[1] >= 2n ** 64n) return null;
  return id;
}

// <0, 0 or >0 as stream id a is before, equal to or after b (both valid ids).
export function compareIds(a, b) {
  const x = parseId(a);
  const y = parseId(b);
  if (x[0] !== y[0]) return x[0] < y[0] ? -1 : 1;
  if (x[1] !== y[1]) return x[1] < y[1] ? -1 : 1;
  return 0;
}

// The canonical spelling of an id ("0001-00" -> "1-0"), or null.
export function normalizeId(text) {
  const id = parseId(text);
  return id ? `${id[0]}-${id[1]}` : null;
}

// The stream key of a channel, as the bridge names it (redis.history_prefix).
export function streamKey(prefix, channel) {
  return prefix + channel;
}

const LIVE_RE = /^\{"history_id":"(\d{1,20}-\d{1,20})"(,|(?=\}))/;

// Splits a live message of a rule with history,
//   {"history_id":"1733250000000-0","id":"42","type":"user",...}
// into { id: "1733250000000-0", data: '{"id":"42","type":"user",...}' },
// where data is byte for byte the notification the stream entry holds in its
// field `n`. The bridge writes history_id first, so this is a cut, not a
// re-encoding. A message without history_id (a rule without history) gives
// { id: null, data: message }: it is passed on as it is, without an SSE id.
export function splitLive(message) {
  const m = LIVE_RE.exec(message);
  if (!m) return { id: null, data: message };
  return { id: m[1], data: '{' + message.slice(m[0].length) };
}

// One atomic step on Redis: the id of the first entry the stream still
// holds ('' when the key is gone: expired, or never written), and the entries
// to send: the newest ARGV[2] (ARGV[1] empty, a client joining afresh), or the
// first ARGV[2] after ARGV[1] (exclusive, a client resuming). Reading both in
// one script is what makes the gap check sound: the stream is trimmed from
// its head while we read, so the first entry checked must be the first entry
// of the very stream the range was read from.
const READ_SCRIPT = `
local first = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', 1)
local entries
if ARGV[1] == '' then
  entries = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', ARGV[2])
else
  entries = redis.call('XRANGE', KEYS[1], '(' .. ARGV[1], '+', 'COUNT', ARGV[2])
end
local first_id = ''
if first[1] then first_id = first[1][1] end
return {first_id, entries}
`;

// The field of an entry's values that holds the notification.
function field(values, name) {
  for (let i = 0; i + 1 < values.length; i += 2) {
    if (values[i] === name) return values[i + 1];
  }
  return null;
}

export const scripts = {
  readHistory: defineScript({
    NUMBER_OF_KEYS: 1,
    SCRIPT: READ_SCRIPT,
    transformArguments(key, after, count) {
      return [key, after, String(count)];
    },
    transformReply([firstId, entries]) {
      return {
        firstId: firstId === '' ? null : firstId,
        entries: entries.map(([id, values]) => ({ id, data: field(values, 'n') })),
      };
    },
  }),
};

// Reads the history of `key` on `client` (a node-redis client created with
// `scripts`). Without `after`: the newest `count` entries, oldest first.
// With `after`: { gap: true } when the stream no longer holds everything
// after that id, that is when its first entry is after it or the stream is
// gone (trimmed past it, or expired); else the first `count` entries after
// it. Trimming (MAXLEN ~) removes entries from the head only, so a first
// entry at or before `after` proves that nothing after `after` was removed.
export async function readHistory(client, key, after, count) {
  const { firstId, entries } = await client.readHistory(key, after ?? '', count);
  if (after == null) return { gap: false, entries: entries.reverse() };
  if (firstId === null || compareIds(firstId, after) > 0) return { gap: true, firstId, entries: [] };
  return { gap: false, entries };
}
