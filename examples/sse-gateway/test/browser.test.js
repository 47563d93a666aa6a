// SPDX-License-Identifier: Apache-2.0
// browser.test.js - the gateway's page in a real browser: Debian's chromium,
// headless, driven by playwright-core (no browser of its own is downloaded).
// The page opens mid-stream, shows the history and then the live events; the
// gateway is stopped and started again twice while events keep coming (once
// with SIGTERM, once with SIGKILL), the browser's EventSource reconnects by
// itself with Last-Event-ID, and the page ends up showing every event once,
// in order. Events come from test/source.js: through Kafka and the bridge when
// the test stack and a bridge with `history` are there, else straight to Redis
// with the bridge's own script.
//
//   CHROMIUM=/usr/bin/chromium             the browser (default: that path)
//   K2R_GATEWAY_SCREENSHOT=FILE            save a screenshot of the page at the end
//   K2R_GATEWAY_TEST_USER=octocat          the channel events:user:NAME (default: octocat-PID)

import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { chromium } from 'playwright-core';

import { freePort, startGateway, startRedis, waitFor } from './helpers.js';
import { openSource } from './source.js';

const executablePath = process.env.CHROMIUM ?? '/usr/bin/chromium';

let redis;
let browser;
let gateway;
let source;

before(async () => {
  assert.ok(existsSync(executablePath), `no browser at ${executablePath} (scripts/deps.sh installs Debian's chromium)`);
  redis = await startRedis();
  source = await openSource(redis);
  browser = await chromium.launch({ executablePath, headless: true, args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'] });
});

after(async () => {
  await browser?.close();
  await gateway?.stop('SIGKILL');
  await source?.close();
  await redis?.stop();
});

test(`the page shows every event once, in order, across two gateway restarts`, async (t) => {
  t.diagnostic(`events ${source.description}`);
  const channel = source.channel;
  const port = await freePort();
  gateway = await startGateway({ redisUrl: redis.url, port });

  // 40 events before the page opens: it shows them from the history.
  await source.produce(1, 40);
  await waitFor('40 events in the history', async () => (await source.published()) >= 40, 30000);

  const page = await browser.newPage({ viewport: { width: 900, height: 640 } });
  const errors = [];
  page.on('pageerror', (err) => errors.push(err.message));
  await page.goto(`${gateway.url}/?channel=${encodeURIComponent(channel)}`);
  const shown = () => page.$$eval('#events li', (lis) => lis.map((li) => Number(li.dataset.id)));
  const shownCount = () => page.$eval('#events', (ol) => ol.childElementCount);
  await waitFor('the page to show the history', async () => (await shownCount()) >= 40, 10000);
  assert.deepEqual(await shown(), Array.from({ length: 40 }, (_, i) => i + 1), 'the history, oldest first');

  // Then 260 more at 100/s, in segments. The gateway goes away twice while
  // a segment is being produced (once with SIGTERM, once with SIGKILL); the
  // rest of that segment, and a whole one more, are produced while it is away
  // and come from the history once the browser is back; the rest live.
  await source.produce(41, 100, 100);
  for (const [signal, from, mid, to] of [['SIGTERM', 101, 140, 160], ['SIGKILL', 161, 210, 240]]) {
    const producing = source.produce(from, mid, 100);
    await waitFor(`event ${from + 9} to be published`, async () => (await source.published()) >= from + 9, 30000);
    await gateway.stop(signal);
    await waitFor('the page to see the gateway gone', async () => (await page.$eval('#state', (s) => s.textContent)) === 'connecting', 10000);
    await producing;
    await source.produce(mid + 1, to);
    await waitFor(`event ${to} to be published`, async () => (await source.published()) >= to, 30000);
    assert.ok((await shownCount()) <= mid, 'events produced while the gateway is away are not on the page yet');
    gateway = await startGateway({ redisUrl: redis.url, port });
  }
  await source.produce(241, 300, 100);

  await waitFor('the page to show all 300 events', async () => (await shownCount()) >= 300, 30000, async () => `(${await shownCount()})`);
  await waitFor('the page to say it is live', async () => (await page.$eval('#state', (s) => s.textContent)) === 'live', 10000);
  assert.deepEqual(await shown(), Array.from({ length: 300 }, (_, i) => i + 1), 'every event once, in order');
  assert.equal(await page.$eval('#count', (c) => c.textContent), '300');
  // Each row's SSE id is the id of that event's entry in the history stream.
  const rows = await page.$$eval('#events li', (lis) => lis.map((li) => li.dataset.streamId));
  assert.deepEqual(rows, await source.streamIds(1, 300));
  assert.equal(await page.$eval('#state', (s) => s.textContent), 'live');
  assert.equal(await page.$eval('#notice', (n) => n.className), '', 'no reset');
  assert.deepEqual(errors, []);

  if (process.env.K2R_GATEWAY_SCREENSHOT) {
    await page.screenshot({ path: process.env.K2R_GATEWAY_SCREENSHOT });
  }
  await page.close();
});
