// SPDX-License-Identifier: Apache-2.0
// join.test.js - the gap-free join protocol, end to end against a real
// redis-server: notifications published the way the bridge publishes a rule
// with `history` (tools/publish.js: XADD + PEXPIRE + PUBLISH in one script),
// the gateway as its own process, and SSE clients that join, are cut off and
// resume with their Last-Event-ID while events flow at 2,000/s. Every
// assertion is on exact outcomes: which events, in which order, how many.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { compareIds } from '../lib/history.js';
import { connectPublisher, notification, publish } from '../tools/publish.js';
import { SseClient, get, redisClient, startGateway, startRedis, waitFor } from './helpers.js';
import { openSource } from './source.js';

let redis;
let gateway;
let publisher;
let admin;

before(async () => {
  redis = await startRedis();
  gateway = await startGateway({ redisUrl: redis.url });
  publisher = await connectPublisher(redis.url);
  admin = await redisClient(redis.url);
});

after(async () => {
  await publisher?.quit();
  await admin?.quit();
  await gateway?.stop();
  await redis?.stop();
});

// 2,000/s is what the publisher aims at; on a busy machine it falls behind
// (the deadlines below bound how far), and catches up as the clock allows.
const SLOW = 60000;

let unique = 0;
function channelName(what) {
  return `events:user:${what}-${process.pid}-${++unique}`;
}

// The notification numbers of a client's messages, checking on the way that
// each SSE id is the stream id that number was stored under and each data
// is the very notification bytes.
function numbers(client, ids, sourceId) {
  return client.messages().map((e) => {
    const n = Number(JSON.parse(e.data).id);
    assert.equal(e.id, ids.get(n), `event ${n}: SSE id`);
    assert.equal(e.data, notification(n, sourceId), `event ${n}: data`);
    return n;
  });
}

function range(from, to) {
  return Array.from({ length: to - from + 1 }, (_, i) => from + i);
}

describe('join protocol', () => {
  test('clients that join at 2,000/s and are cut off mid-stream get every event once, in order', async (t) => {
    const channel = channelName('flow');
    const sourceId = channel.split(':').pop();
    const total = 12000; // 6 s at 2,000/s
    const ids = new Map(); // notification number -> stream id
    let published = 0;
    const started = performance.now();
    const run = publish(publisher, {
      channel,
      count: total,
      rate: 2000,
      maxlen: 50000, // nothing is trimmed here: resets are the next test's
      onPublished: (n, id) => {
        ids.set(n, id);
        published = Math.max(published, n);
      },
    });

    // Eight clients: the first one subscribes the gateway to the channel,
    // the others join an existing subscription, at staggered moments.
    const clients = [];
    const joins = [];
    for (let k = 0; k < 8; k++) {
      await waitFor(`${1000 + k * 600} events published`, () => published >= 1000 + k * 600, SLOW);
      const c = new SseClient(`${gateway.url}/events/${encodeURIComponent(channel)}`);
      const before = published;
      await c.connect();
      await waitFor(`client ${k}'s first event`, () => c.messages().length > 0, SLOW);
      // The newest event Redis holds now: at least the newest when the
      // gateway read the history (this process hears of a publish later
      // than Redis has it, so `published` cannot say).
      const [newest] = await admin.xRevRange(`history:${channel}`, '+', '-', { COUNT: 1 });
      clients.push(c);
      joins.push({ before, after: Number(JSON.parse(newest.message.n).id) });
    }

    // Cut each client off once, at staggered moments, keep it away while
    // 2,500 events are published (more than two pages of the resuming read),
    // and bring it back with its Last-Event-ID, as a browser does.
    const away = [];
    await Promise.all(
      clients.map(async (c, k) => {
        await waitFor(`event ${5400 + k * 200}`, () => published >= 5400 + k * 200, SLOW);
        c.close();
        const at = published;
        await waitFor('2,500 more events while the client is away', () => published >= at + 2500, SLOW);
        away.push(published - at);
        await c.connect();
      }),
    );
    assert.equal(away.length, 8);
    assert.ok(published < total, 'every client came back before the last event');

    await run;
    assert.equal(published, total);
    t.diagnostic(`${total} events published at ${Math.round(total / ((performance.now() - started) / 1000))}/s on average (aimed at 2,000/s)`);
    for (const [k, c] of clients.entries()) {
      await waitFor(`client ${k} to receive event ${total}`, () => c.messages().at(-1)?.id === ids.get(total), SLOW, () => `(has ${c.messages().length})`);
      const got = numbers(c, ids, sourceId);
      const first = got[0];
      // It joined afresh: the newest 100 events when the gateway read the
      // history (after what was published before it connected, before what
      // Redis held once its first event was there), then everything.
      assert.ok(first >= joins[k].before - 99 && first <= joins[k].after - 99, `client ${k}: first event ${first}, joined between ${joins[k].before} and ${joins[k].after}`);
      assert.deepEqual(got, range(first, total), `client ${k}: every event from ${first} to ${total}, once, in order`);
      assert.equal(c.events.filter((e) => e.event !== 'message').length, 0, `client ${k}: no reset`);
      c.close();
    }
    // Every stream id the clients saw increased: the order the stream holds.
    const seen = clients[0].messages().map((e) => e.id);
    for (let i = 1; i < seen.length; i++) assert.ok(compareIds(seen[i - 1], seen[i]) < 0);

    // The last client gone, the gateway leaves the channel.
    await waitFor('the gateway to unsubscribe', async () => (await admin.pubSubNumSub(channel))[channel] === 0);
  });

  test('through Kafka and the bridge: clients that join at 2,000/s and are cut off mid-stream get what the stream holds, once, in order', async (t) => {
    const source = await openSource(redis, { user: `kafka-join-${process.pid}`, maxlen: 20000 });
    try {
      if (source.kind !== 'kafka') {
        t.skip('needs the test stack (K2R_TEST_KAFKA_BROKERS) and a bridge with history');
        return;
      }
      const { channel } = source;
      const total = 6000;
      // The first record creates the topic and starts the bridge.
      await source.produce(1, 1);
      await waitFor('the bridge to publish event 1', async () => (await source.published()) >= 1, SLOW);
      const started = performance.now();
      const producing = source.produce(2, total, 2000);
      let published = 1;
      const watch = setInterval(async () => {
        published = await source.published().catch(() => published);
      }, 20);

      const clients = [];
      const joins = [];
      for (let k = 0; k < 4; k++) {
        await waitFor(`event ${500 + k * 800}`, () => published >= 500 + k * 800, SLOW);
        const c = new SseClient(`${gateway.url}/events/${encodeURIComponent(channel)}`);
        const before = published;
        await c.connect();
        await waitFor(`client ${k}'s first event`, () => c.messages().length > 0, SLOW);
        clients.push(c);
        joins.push(before);
      }
      await Promise.all(
        clients.map(async (c, k) => {
          await waitFor(`event ${3200 + k * 300}`, () => published >= 3200 + k * 300, SLOW);
          c.close();
          const at = published;
          await waitFor('1,500 more events while the client is away', () => published >= at + 1500, SLOW);
          await c.connect();
        }),
      );
      await producing;
      await waitFor(`event ${total} in the history`, async () => (await source.published()) >= total, SLOW);
      clearInterval(watch);
      t.diagnostic(`${total} records produced and published through the bridge at ${Math.round(total / ((performance.now() - started) / 1000))}/s on average (aimed at 2,000/s)`);

      // The bridge published each record once (nothing failed here): the
      // stream holds events 1..total, in order.
      const entries = await admin.xRange(`history:${channel}`, '-', '+');
      assert.deepEqual(entries.map((e) => Number(JSON.parse(e.message.n).id)), range(1, total));
      const last = entries.at(-1).id;
      for (const [k, c] of clients.entries()) {
        await waitFor(`client ${k} to receive event ${total}`, () => c.messages().at(-1)?.id === last, SLOW, () => `(has ${c.messages().length})`);
        const got = c.messages();
        const from = entries.findIndex((e) => e.id === got[0].id);
        assert.ok(from >= 0 && from <= joins[k], `client ${k}: its first event is in the history it joined`);
        // Exactly the stream's entries from its first one on: ids and bytes.
        assert.deepEqual(got.map((e) => [e.id, e.data]), entries.slice(from).map((e) => [e.id, e.message.n]), `client ${k}`);
        assert.equal(c.events.length, got.length, `client ${k}: no reset`);
        c.close();
      }
    } finally {
      await source.close();
    }
  });

  test('a client whose last id was trimmed from the history gets a reset, then the recent history and live events', async () => {
    const channel = channelName('trim');
    const sourceId = channel.split(':').pop();
    const ids = new Map();
    await publish(publisher, { channel, count: 500, maxlen: 100, onPublished: (n, id) => ids.set(n, id) });
    const held = await admin.xLen(`history:${channel}`);
    assert.ok(held >= 100 && held < 500, `the stream holds ${held} entries`);

    const c = new SseClient(`${gateway.url}/events/${encodeURIComponent(channel)}`);
    await c.connect(ids.get(10));
    await waitFor('the recent history', () => c.messages().length >= 100);
    await publish(publisher, { channel, count: 5, first: 501, maxlen: 100, onPublished: (n, id) => ids.set(n, id) });
    await waitFor('5 live events', () => c.messages().length >= 105);

    assert.equal(c.events[0].event, 'reset');
    assert.deepEqual(JSON.parse(c.events[0].data), { reason: 'trimmed', last_event_id: ids.get(10) });
    assert.equal(c.events[0].id, '', 'the reset clears the client\'s Last-Event-ID');
    assert.deepEqual(numbers(c, ids, sourceId), range(401, 505));
    assert.equal(c.events.length, 1 + 105);
    c.close();
  });

  test('a client whose last id is still held resumes exactly after it, across a trimmed head', async () => {
    const channel = channelName('resume');
    const sourceId = channel.split(':').pop();
    const ids = new Map();
    await publish(publisher, { channel, count: 500, maxlen: 100, onPublished: (n, id) => ids.set(n, id) });
    const [first] = await admin.xRange(`history:${channel}`, '-', '+', { COUNT: 1 });
    const oldest = Number(JSON.parse(first.message.n).id);
    assert.ok(oldest > 1 && oldest <= 401, `trimmed up to ${oldest}`);

    const c = new SseClient(`${gateway.url}/events/${encodeURIComponent(channel)}`);
    await c.connect(ids.get(oldest)); // the oldest entry held: nothing after it was lost
    await waitFor('the history after it', () => c.messages().length >= 500 - oldest);
    await publish(publisher, { channel, count: 3, first: 501, maxlen: 100, onPublished: (n, id) => ids.set(n, id) });
    await waitFor('3 live events', () => c.messages().length >= 503 - oldest);
    assert.deepEqual(numbers(c, ids, sourceId), range(oldest + 1, 503));
    assert.equal(c.events.length, 503 - oldest, 'no reset, nothing else');
    c.close();
  });

  test('a client whose history expired (ttl) gets a reset, then only new events', async () => {
    const channel = channelName('ttl');
    const sourceId = channel.split(':').pop();
    const ids = new Map();
    await publish(publisher, { channel, count: 5, ttlMs: 300, onPublished: (n, id) => ids.set(n, id) });
    assert.ok((await admin.pTTL(`history:${channel}`)) > 0, 'the stream has an expiry');
    await waitFor('the stream to expire', async () => (await admin.exists(`history:${channel}`)) === 0, 5000);

    const c = new SseClient(`${gateway.url}/events/${encodeURIComponent(channel)}`);
    await c.connect(ids.get(5));
    await waitFor('the reset', () => c.events.length >= 1);
    await publish(publisher, { channel, count: 3, first: 6, onPublished: (n, id) => ids.set(n, id) });
    await waitFor('3 live events', () => c.messages().length >= 3);
    assert.equal(c.events[0].event, 'reset');
    assert.deepEqual(JSON.parse(c.events[0].data), { reason: 'expired', last_event_id: ids.get(5) });
    assert.deepEqual(numbers(c, ids, sourceId), [6, 7, 8]);
    assert.equal(c.events.length, 4);
    c.close();
  });

  test('a Last-Event-ID that is not a stream id gets a reset; a fresh join of an empty channel gets only live events', async () => {
    const channel = channelName('fresh');
    const sourceId = channel.split(':').pop();
    const ids = new Map();
    const bad = new SseClient(`${gateway.url}/events/${encodeURIComponent(channel)}`);
    await bad.connect('not-an-id');
    const fresh = new SseClient(`${gateway.url}/events/${encodeURIComponent(channel)}`);
    await fresh.connect();
    await waitFor('the reset', () => bad.events.length >= 1);
    // Both are subscribed once the gateway is on the channel.
    await waitFor('the subscription', async () => (await admin.pubSubNumSub(channel))[channel] === 1);
    await publish(publisher, { channel, count: 4, onPublished: (n, id) => ids.set(n, id) });
    await waitFor('4 live events each', () => bad.messages().length >= 4 && fresh.messages().length >= 4);
    assert.deepEqual(bad.events[0], { id: '', event: 'reset', data: JSON.stringify({ reason: 'invalid', last_event_id: 'not-an-id' }) });
    assert.deepEqual(numbers(bad, ids, sourceId), [1, 2, 3, 4]);
    assert.deepEqual(numbers(fresh, ids, sourceId), [1, 2, 3, 4]);
    assert.equal(fresh.events.length, 4);
    bad.close();
    fresh.close();
  });

  test('a rule without history: its plain notifications pass through, without an SSE id', async () => {
    const channel = channelName('plain');
    const c = new SseClient(`${gateway.url}/events/${encodeURIComponent(channel)}`);
    await c.connect();
    await waitFor('the subscription', async () => (await admin.pubSubNumSub(channel))[channel] === 1);
    const plain = '{"id":"7","type":"user","source_id":"x"}';
    await admin.publish(channel, plain);
    await waitFor('the notification', () => c.messages().length >= 1);
    assert.deepEqual(c.events, [{ id: null, event: 'message', data: plain }]);
    c.close();
  });

  test('Redis restarted (no persistence): the gateway ends its streams; a client that comes back is reset, then gets the new events', async () => {
    const channel = channelName('restart');
    const sourceId = channel.split(':').pop();
    const ids = new Map();
    const c = new SseClient(`${gateway.url}/events/${encodeURIComponent(channel)}`);
    await c.connect();
    await waitFor('the subscription', async () => (await admin.pubSubNumSub(channel))[channel] === 1);
    await publish(publisher, { channel, count: 20, onPublished: (n, id) => ids.set(n, id) });
    await waitFor('20 live events', () => c.messages().length >= 20);

    await redis.restart();
    // The gateway's subscriber lost its connection: the stream is ended.
    await waitFor('the gateway to end the stream', () => !c.connected, 20000);
    await waitFor('the gateway to be healthy again', async () => (await get(`${gateway.url}/healthz`)).status === 200, 20000);
    // The history went with the server: like a browser, come back with the last id.
    await c.connect();
    await waitFor('the reset', () => c.events.length >= 21);
    await waitFor('the subscription', async () => {
      try {
        return (await admin.pubSubNumSub(channel))[channel] === 1;
      } catch {
        return false; // admin reconnects by itself
      }
    }, 20000);
    await publish(publisher, { channel, count: 5, first: 21, onPublished: (n, id) => ids.set(n, id) });
    await waitFor('5 more live events', () => c.messages().length >= 25);
    assert.deepEqual(numbers(c, ids, sourceId), range(1, 25));
    assert.deepEqual(c.events[20], { id: '', event: 'reset', data: JSON.stringify({ reason: 'expired', last_event_id: ids.get(20) }) });
    assert.equal(c.events.length, 26);
    c.close();
  });

  test('/healthz, the page, and channels outside the prefix', async () => {
    const health = await get(`${gateway.url}/healthz`);
    assert.equal(health.status, 200);
    assert.equal(JSON.parse(health.body).status, 'ok');
    const page = await get(`${gateway.url}/`);
    assert.equal(page.status, 200);
    assert.match(page.body, /EventSource/);
    assert.equal((await get(`${gateway.url}/events/secret:thing`)).status, 404);
    assert.equal((await get(`${gateway.url}/nope`)).status, 404);
  });
});
