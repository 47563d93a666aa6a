// SPDX-License-Identifier: Apache-2.0
// history.test.js - the pure parts of lib/history.js: stream ids, their
// order, and the split of a live message into its id and the notification.
// No server, no I/O.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { compareIds, normalizeId, parseId, splitLive, streamKey } from '../lib/history.js';

test('stream ids compare as (ms, seq) pairs, not as strings', () => {
  assert.ok(compareIds('999-5', '1000-0') < 0);
  assert.ok(compareIds('1000-10', '1000-9') > 0);
  assert.equal(compareIds('1733250000000-0', '1733250000000-0'), 0);
  // Past 2^53, where a JavaScript number would round.
  assert.ok(compareIds('9007199254740993-0', '9007199254740992-0') > 0);
  assert.ok(compareIds('18446744073709551615-18446744073709551615', '18446744073709551615-18446744073709551614') > 0);
});

test('only well-formed ids parse; normalizeId spells them as Redis does', () => {
  for (const bad of ['', '1', '1-', '-1', '1-2-3', 'a-1', '1-0 ', ' 1-0', '1.5-0', '18446744073709551616-0', null, undefined, 42]) {
    assert.equal(parseId(bad), null, JSON.stringify(bad));
    assert.equal(normalizeId(bad), null, JSON.stringify(bad));
  }
  assert.equal(normalizeId('0001-00'), '1-0');
  assert.equal(normalizeId('1733250000000-7'), '1733250000000-7');
});

test('a live message splits into its stream id and the notification, byte for byte', () => {
  assert.deepEqual(splitLive('{"history_id":"1733250000000-0","id":"42","type":"user","source_id":"octocat"}'), {
    id: '1733250000000-0',
    data: '{"id":"42","type":"user","source_id":"octocat"}',
  });
  // A notification with no member (the bridge writes {"history_id":"..."}).
  assert.deepEqual(splitLive('{"history_id":"5-1"}'), { id: '5-1', data: '{}' });
  // Values are not re-encoded: spacing, escapes and number forms survive.
  assert.deepEqual(splitLive('{"history_id":"1-0","n":1.50,"s":"\\u00e9"}'), { id: '1-0', data: '{"n":1.50,"s":"\\u00e9"}' });
});

test('a message of a rule without history passes through without an id', () => {
  for (const m of ['{"id":"42","type":"user"}', 'plain text', '{"id":"1","history_id":"1-0"}', '{"history_id":1}', '{ "history_id":"1-0"}']) {
    assert.deepEqual(splitLive(m), { id: null, data: m }, m);
  }
});

test('the stream key is the prefix and the channel', () => {
  assert.equal(streamKey('history:', 'events:user:octocat'), 'history:events:user:octocat');
});
