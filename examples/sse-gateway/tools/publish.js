#!/usr/bin/env node
// SPDX-License-Identifier: Apache-2.0
// publish.js - a stand-in for the bridge's publish step of a rule with
// `history`, for testing the gateway without Kafka: one script on Redis that
// appends a notification to the channel's history stream (XADD MAXLEN ~),
// refreshes the stream's expiry when there is one, and publishes the live
// message, {"history_id":"<entry id>", ...the notification's members}, to the
// channel, all in one atomic step, exactly as the bridge does it.
//
//   node tools/publish.js --channel events:user:octocat [--redis URL]
//        [--count 100] [--rate 50] [--maxlen 1000] [--ttl-ms 0]
//        [--history-prefix history:] [--first 1]
//
// Notification i (from --first on) is {"id":"<i>","type":"user","source_id":"<channel's last part>"}.
// Prints "published N" at the end.

import { parseArgs } from 'node:util';
import { pathToFileURL } from 'node:url';
import { createClient, defineScript } from 'redis';

export const publishScript = defineScript({
  NUMBER_OF_KEYS: 1,
  // KEYS[1] the stream; ARGV: channel, notification, maxlen, ttl in ms (0: none)
  SCRIPT: `
local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[3], '*', 'n', ARGV[2])
if tonumber(ARGV[4]) > 0 then redis.call('PEXPIRE', KEYS[1], ARGV[4]) end
local rest = string.sub(ARGV[2], 2)
if rest ~= '}' then rest = ',' .. rest end
redis.call('PUBLISH', ARGV[1], '{"history_id":"' .. id .. '"' .. rest)
return id
`,
  transformArguments(key, channel, notification, maxlen, ttlMs) {
    return [key, channel, notification, String(maxlen), String(ttlMs)];
  },
  transformReply(id) {
    return id;
  },
});

// Connects a client that has the publish script as client.publishWithHistory().
export async function connectPublisher(url) {
  const client = createClient({ url, scripts: { publishWithHistory: publishScript } });
  client.on('error', () => {}); // a failed command rejects its own promise
  await client.connect();
  return client;
}

export function notification(i, sourceId) {
  return JSON.stringify({ id: String(i), type: 'user', source_id: sourceId });
}

// Publishes notifications first..first+count-1 to `channel`, `rate` per
// second (paced by the clock, in 10 ms slices; 0: as fast as Redis answers).
// Calls onPublished(i, streamId) after each; returns when all are answered
// or when `signal` aborts.
export async function publish(client, { channel, count, rate = 0, maxlen = 1000, ttlMs = 0, historyPrefix = 'history:', first = 1, signal, onPublished }) {
  const key = historyPrefix + channel;
  const sourceId = channel.split(':').pop();
  const t0 = performance.now();
  let i = 0;
  while (i < count && !signal?.aborted) {
    const due = rate > 0 ? Math.min(count, Math.floor(((performance.now() - t0) / 1000) * rate) + 1) : count;
    const batch = [];
    for (; i < due && batch.length < 500; i++) {
      const n = first + i;
      batch.push(client.publishWithHistory(key, channel, notification(n, sourceId), maxlen, ttlMs).then((id) => onPublished?.(n, id)));
    }
    await Promise.all(batch);
    if (rate > 0 && i < count) {
      const next = t0 + ((i + 1) / rate) * 1000; // when the next one is due
      await new Promise((resolve) => setTimeout(resolve, Math.max(0, Math.min(10, next - performance.now()))));
    }
  }
  return i;
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  const { values } = parseArgs({
    options: {
      redis: { type: 'string', default: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379' },
      channel: { type: 'string' },
      count: { type: 'string', default: '100' },
      rate: { type: 'string', default: '50' },
      maxlen: { type: 'string', default: '1000' },
      'ttl-ms': { type: 'string', default: '0' },
      'history-prefix': { type: 'string', default: 'history:' },
      first: { type: 'string', default: '1' },
    },
  });
  if (!values.channel) {
    process.stderr.write('publish.js: --channel is required\n');
    process.exit(2);
  }
  const client = await connectPublisher(values.redis);
  const ac = new AbortController();
  process.on('SIGINT', () => ac.abort());
  process.on('SIGTERM', () => ac.abort());
  const n = await publish(client, {
    channel: values.channel,
    count: Number(values.count),
    rate: Number(values.rate),
    maxlen: Number(values.maxlen),
    ttlMs: Number(values['ttl-ms']),
    historyPrefix: values['history-prefix'],
    first: Number(values.first),
    signal: ac.signal,
  });
  process.stdout.write(`published ${n}\n`);
  await client.quit();
}
