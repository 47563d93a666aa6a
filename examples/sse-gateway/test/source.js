// SPDX-License-Identifier: Apache-2.0
// source.js - where the browser test's events come from. Through Kafka and
// the bridge when the test stack runs (K2R_TEST_KAFKA_BROKERS) and the bridge
// accepts a rule with `history` (its `check` says so); else straight to Redis
// with the bridge's own script (tools/publish.js). K2R_GATEWAY_SOURCE=kafka
// or redis forces one; kafka then fails when it cannot be had.
//
// Event n is the record {"id":"<n>","type":"user","source_id":"<id>"} (Kafka)
// or that notification (Redis); either way the channel gets the notification
// {"id":"<n>","type":"user","source_id":"<id>"} with its stream id.

import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { connectPublisher, notification, publish } from '../tools/publish.js';
import { GATEWAY_DIR, redisClient } from './helpers.js';

const BRIDGE = process.env.K2R_BRIDGE_BIN ?? path.join(GATEWAY_DIR, '..', '..', 'build', 'kafka-redis-bridge');

function bridgeConfig({ brokers, topic, redisPort, maxlen = 1000 }) {
  return `kafka:
  brokers: ${brokers}
  group_id: ${topic}
  topics: [${topic}]
  properties:
    auto.offset.reset: earliest
    auto.commit.interval.ms: 500
redis:
  url: redis://127.0.0.1:${redisPort}
http:
  enabled: false
log:
  format: text
rules:
  - name: users
    topic: ${topic}
    type: type
    id: source_id
    channel: "events:{type}:{id}"
    notification: [id, type, source_id]
    history: {maxlen: ${maxlen}, ttl: 1h}
`;
}

// Produces lines ("key\tvalue") to a topic with kcat, `rate` per second (0:
// at once); resolves when kcat has delivered them all and exited.
function kcatProduce(brokers, topic, lines, rate) {
  return new Promise((resolve, reject) => {
    const kcat = spawn('kcat', ['-P', '-b', brokers, '-t', topic, '-K', '\t'], { stdio: ['pipe', 'ignore', 'inherit'] });
    kcat.once('error', reject);
    kcat.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`kcat exited ${code}`))));
    const t0 = performance.now();
    let i = 0;
    const pump = () => {
      const due = rate > 0 ? Math.min(lines.length, Math.floor(((performance.now() - t0) / 1000) * rate) + 1) : lines.length;
      for (; i < due; i++) kcat.stdin.write(lines[i] + '\n');
      if (i < lines.length) setTimeout(pump, 10); // pacing, not synchronisation
      else kcat.stdin.end();
    };
    pump();
  });
}

async function kafkaSource(redis, channel, sourceId, maxlen) {
  const brokers = process.env.K2R_TEST_KAFKA_BROKERS;
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sse-gateway-bridge.'));
  const topic = `gateway-browser-${process.pid}-${Date.now()}`;
  const config = path.join(dir, 'bridge.yaml');
  writeFileSync(config, bridgeConfig({ brokers, topic, redisPort: redis.port, maxlen }));
  let bridge = null;
  let bridgeLog = '';
  return {
    description: `produced to Kafka (${brokers}, topic ${topic}) and published by the bridge (${BRIDGE})`,
    async produce(from, to, rate = 0) {
      const lines = [];
      for (let n = from; n <= to; n++) lines.push(`${sourceId}\t${notification(n, sourceId)}`);
      await kcatProduce(brokers, topic, lines, rate);
      // The first records create the topic; the bridge starts after them.
      if (!bridge) {
        bridge = spawn(BRIDGE, ['run', '-c', config], { stdio: ['ignore', 'ignore', 'pipe'] });
        bridge.stderr.on('data', (d) => (bridgeLog += d));
      }
    },
    log: () => bridgeLog,
    async close() {
      if (bridge && bridge.exitCode === null) {
        const gone = new Promise((resolve) => bridge.once('exit', resolve));
        bridge.kill('SIGTERM');
        await gone;
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

// True when the bridge binary accepts a rule with `history` (its `check`).
function bridgeHasHistory(redis) {
  if (!process.env.K2R_TEST_KAFKA_BROKERS) return false;
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sse-gateway-check.'));
  try {
    const config = path.join(dir, 'bridge.yaml');
    writeFileSync(config, bridgeConfig({ brokers: process.env.K2R_TEST_KAFKA_BROKERS, topic: 'gateway-check', redisPort: redis.port }));
    return spawnSync(BRIDGE, ['check', '-c', config], { stdio: 'ignore' }).status === 0;
  } catch {
    return false;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

// { kind, channel, description, produce(from, to, rate), published(),
// streamIds(from, to), close() }: kind is 'kafka' or 'redis'; published() is
// the number of the newest event in the channel's history. `user` names the
// channel events:user:<user>, `maxlen` the history's length.
export async function openSource(redis, { user, maxlen = 1000 } = {}) {
  const sourceId = user ?? process.env.K2R_GATEWAY_TEST_USER ?? `octocat-${process.pid}`;
  const channel = `events:user:${sourceId}`;
  const want = process.env.K2R_GATEWAY_SOURCE ?? 'auto';
  const useKafka = want === 'kafka' || (want === 'auto' && bridgeHasHistory(redis));
  if (want === 'kafka' && !bridgeHasHistory(redis)) {
    throw new Error(`K2R_GATEWAY_SOURCE=kafka: needs K2R_TEST_KAFKA_BROKERS and a bridge (${BRIDGE}) whose check accepts \`history\``);
  }
  const reader = await redisClient(redis.url);
  let src;
  if (useKafka) {
    src = await kafkaSource(redis, channel, sourceId, maxlen);
  } else {
    const publisher = await connectPublisher(redis.url);
    src = {
      description: `published straight to Redis with the bridge's script (tools/publish.js; ${redis.url})`,
      produce: (from, to, rate = 0) => publish(publisher, { channel, first: from, count: to - from + 1, rate, maxlen }),
      close: () => publisher.quit(),
    };
  }
  return {
    ...src,
    kind: useKafka ? 'kafka' : 'redis',
    channel,
    async published() {
      const [last] = await reader.xRevRange(`history:${channel}`, '+', '-', { COUNT: 1 });
      return last ? Number(JSON.parse(last.message.n).id) : 0;
    },
    // The stream ids of events from..to, in the stream's order.
    async streamIds(from, to) {
      const entries = await reader.xRange(`history:${channel}`, '-', '+');
      return entries
        .filter((e) => {
          const n = Number(JSON.parse(e.message.n).id);
          return n >= from && n <= to;
        })
        .map((e) => e.id);
    },
    async close() {
      await src.close();
      await reader.quit();
    },
  };
}
