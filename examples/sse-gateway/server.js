#!/usr/bin/env node
// SPDX-License-Identifier: Apache-2.0
// server.js - runs the SSE gateway (lib/gateway.js) on node:http.
//
//   node server.js [--listen 127.0.0.1:8090] [--redis redis://127.0.0.1:6379]
//                  [--history-prefix history:] [--channel-prefix events:]
//                  [--history-count 100]
//
// Each option may also come from the environment: GATEWAY_LISTEN, REDIS_URL,
// HISTORY_PREFIX, CHANNEL_PREFIX, HISTORY_COUNT. It prints one line,
// "listening on http://HOST:PORT", once it accepts connections, and stops on
// SIGINT or SIGTERM: open streams are ended (browsers reconnect, to this
// gateway once it is back or to another one, with their Last-Event-ID).

import http from 'node:http';
import { parseArgs } from 'node:util';

import { Gateway, defaults } from './lib/gateway.js';

function fail(message) {
  process.stderr.write(`sse-gateway: ${message}\n`);
  process.exit(2);
}

let values;
try {
  ({ values } = parseArgs({
    options: {
      listen: { type: 'string', default: process.env.GATEWAY_LISTEN ?? '127.0.0.1:8090' },
      redis: { type: 'string', default: process.env.REDIS_URL ?? defaults.redisUrl },
      'history-prefix': { type: 'string', default: process.env.HISTORY_PREFIX ?? defaults.historyPrefix },
      'channel-prefix': { type: 'string', default: process.env.CHANNEL_PREFIX ?? defaults.channelPrefix },
      'history-count': { type: 'string', default: process.env.HISTORY_COUNT ?? String(defaults.historyCount) },
    },
  }));
} catch (err) {
  fail(err.message);
}

const m = /^(.*):(\d{1,5})$/.exec(values.listen);
if (!m || Number(m[2]) > 65535) fail(`--listen: want HOST:PORT, not "${values.listen}"`);
const host = m[1].replace(/^\[(.*)\]$/, '$1');
const port = Number(m[2]);
const historyCount = Number(values['history-count']);
if (!Number.isInteger(historyCount) || historyCount < 0 || historyCount > 100000) {
  fail(`--history-count: want an integer from 0 to 100000, not "${values['history-count']}"`);
}

const gateway = new Gateway({
  redisUrl: values.redis,
  historyPrefix: values['history-prefix'],
  channelPrefix: values['channel-prefix'],
  historyCount,
});

try {
  await gateway.start();
} catch (err) {
  fail(`cannot reach Redis at ${values.redis}: ${err.message}`);
}

const server = http.createServer((req, res) => gateway.handle(req, res));
server.on('error', (err) => fail(`cannot listen on ${values.listen}: ${err.message}`));
server.listen(port, host, () => {
  const a = server.address();
  const shown = a.family === 'IPv6' ? `[${a.address}]` : a.address;
  process.stdout.write(`listening on http://${shown}:${a.port}\n`);
});

let stopping = false;
async function stop(signal) {
  if (stopping) return;
  stopping = true;
  process.stderr.write(`sse-gateway: ${signal}: stopping\n`);
  server.close();
  await gateway.stop();
  server.closeAllConnections();
  process.exit(0);
}
process.on('SIGINT', () => stop('SIGINT'));
process.on('SIGTERM', () => stop('SIGTERM'));
