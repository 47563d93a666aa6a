// SPDX-License-Identifier: Apache-2.0
// gateway.js - the SSE gateway: an HTTP handler that streams a channel's
// notifications as Server-Sent Events, the recent history first and then the
// live ones, with no gap and no duplicate between the two (docs/history.md in
// the repository describes the protocol this implements).
//
//   GET /events/<channel>   text/event-stream: `id:` the stream entry id,
//                           `data:` the notification JSON; `event: reset`
//                           when the client's Last-Event-ID is older than
//                           what the history still holds
//   GET /healthz            200 when both Redis connections are ready, else 503
//   GET /                   the static page (public/index.html)
//
// All clients share one subscriber connection: a channel is subscribed when
// its first client arrives and unsubscribed when its last one leaves. History
// reads go over a second connection (a subscribed connection can run no other
// command). It is not a general HTTP server, and it does not authenticate:
// put it behind what authenticates your users, and narrow the channels a
// client may ask for with `channelPrefix`.

import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createClient } from 'redis';

import { compareIds, normalizeId, readHistory, scripts, splitLive, streamKey } from './history.js';

const PUBLIC_DIR = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'public');
const STATIC = new Map([
  ['/', ['index.html', 'text/html; charset=utf-8']],
  ['/index.html', ['index.html', 'text/html; charset=utf-8']],
]);

export const defaults = {
  redisUrl: 'redis://127.0.0.1:6379',
  historyPrefix: 'history:',
  channelPrefix: 'events:',
  historyCount: 100, // entries sent to a client that joins without Last-Event-ID
  pageSize: 1000, // entries per read while a resuming client catches up
  maxBuffered: 1 << 20, // bytes queued to one slow client before it is cut off
  heartbeatMs: 15000,
  retryMs: 1000, // the browser's reconnect delay (SSE `retry:`)
  log: (line) => process.stderr.write(`sse-gateway: ${line}\n`),
};

// One client's connection: the join protocol's state for it.
class Session {
  constructor(gateway, channel, res) {
    this.gateway = gateway;
    this.channel = channel;
    this.res = res;
    this.joining = true; // live messages are buffered until the history is sent
    this.buffer = [];
    this.last = null; // the id of the last event sent
    this.closed = false;
  }

  // Writes one SSE event; cuts off a client that does not read.
  send(text) {
    if (this.closed || this.res.destroyed) return;
    this.res.write(text);
    if (this.res.writableLength > this.gateway.opts.maxBuffered) {
      // It reconnects with its Last-Event-ID and catches up from the history.
      this.gateway.stats.slowClients++;
      this.res.destroy();
    }
  }

  emit(id, data) {
    if (id === null) {
      this.send(`data: ${data}\n\n`);
      return;
    }
    if (this.last !== null && compareIds(id, this.last) <= 0) return; // sent already
    this.last = id;
    this.send(`id: ${id}\ndata: ${data}\n\n`);
  }

  // A live message from the shared subscriber.
  live(message) {
    const { id, data } = splitLive(message);
    if (this.joining) this.buffer.push({ id, data });
    else this.emit(id, data);
  }

  // Sends the history after `after` (every entry, page by page), or the
  // newest opts.historyCount entries when `after` is null, then the live
  // messages buffered meanwhile that come after it. The subscription was
  // confirmed before the first read, so every notification is in the history
  // read, in the buffer, or both: none is missed, and those in both are sent
  // once (emit skips ids not after the last one sent).
  async catchUp(after) {
    const { client, opts } = this.gateway;
    const key = streamKey(opts.historyPrefix, this.channel);
    if (after !== null) {
      for (;;) {
        const page = await readHistory(client, key, after, opts.pageSize);
        if (this.closed) return;
        if (page.gap) {
          // Something after `after` is gone (trimmed, or the stream expired):
          // tell the client, then start it over as a fresh joiner. The empty
          // `id:` clears the browser's Last-Event-ID, so that a reconnect
          // before the next event joins afresh instead of resetting again.
          this.gateway.stats.resets++;
          const reason = page.firstId === null ? 'expired' : 'trimmed';
          this.send(`event: reset\nid:\ndata: ${JSON.stringify({ reason, last_event_id: after })}\n\n`);
          this.last = null;
          after = null;
          break;
        }
        for (const e of page.entries) this.emit(e.id, e.data);
        if (page.entries.length < opts.pageSize) break;
        after = this.last;
      }
    }
    if (after === null) {
      const tail = await readHistory(client, key, null, opts.historyCount);
      if (this.closed) return;
      for (const e of tail.entries) this.emit(e.id, e.data);
    }
    this.joining = false;
    const buffered = this.buffer;
    this.buffer = [];
    for (const m of buffered) this.emit(m.id, m.data);
  }
}

// The channels the shared subscriber is on, each with its sessions.
class Hub {
  constructor(subscriber, log) {
    this.subscriber = subscriber;
    this.log = log;
    this.channels = new Map(); // channel -> { sessions: Set, ready: Promise, listener }
  }

  // Adds a session; resolves once Redis confirmed the channel's subscription.
  async add(session) {
    let ch = this.channels.get(session.channel);
    if (!ch) {
      const entry = { sessions: new Set() };
      entry.listener = (message) => {
        for (const s of entry.sessions) s.live(message);
      };
      entry.ready = this.subscriber.subscribe(session.channel, entry.listener).catch((err) => {
        // Not subscribed: the next client of the channel tries again.
        if (this.channels.get(session.channel) === entry) this.channels.delete(session.channel);
        throw err;
      });
      this.channels.set(session.channel, entry);
      ch = entry;
    }
    ch.sessions.add(session);
    await ch.ready;
  }

  remove(session) {
    const ch = this.channels.get(session.channel);
    if (!ch || !ch.sessions.delete(session) || ch.sessions.size > 0) return;
    this.channels.delete(session.channel);
    this.subscriber.unsubscribe(session.channel, ch.listener).catch((err) => {
      this.log(`unsubscribe ${session.channel}: ${err.message}`);
    });
  }

  sessions() {
    const all = [];
    for (const ch of this.channels.values()) all.push(...ch.sessions);
    return all;
  }
}

export class Gateway {
  constructor(options = {}) {
    this.opts = { ...defaults, ...options };
    this.stats = { clients: 0, joins: 0, resets: 0, slowClients: 0 };
    this.client = createClient({ url: this.opts.redisUrl, scripts });
    this.subscriber = this.client.duplicate();
    this.hub = new Hub(this.subscriber, this.opts.log);
    this.heartbeat = null;
    for (const [name, c] of [['redis', this.client], ['subscriber', this.subscriber]]) {
      c.on('error', (err) => this.opts.log(`${name}: ${err.message}`));
    }
    // Messages published while the subscriber is away are lost to it. Rather
    // than leave its clients with a hole, end their streams: each reconnects
    // with its Last-Event-ID and catches up from the history.
    this.subscriber.on('reconnecting', () => this.dropAll('the Redis subscriber reconnects'));
  }

  async start() {
    await Promise.all([this.client.connect(), this.subscriber.connect()]);
    this.heartbeat = setInterval(() => {
      for (const s of this.hub.sessions()) s.send(': keep-alive\n\n');
    }, this.opts.heartbeatMs);
    this.heartbeat.unref();
  }

  dropAll(why) {
    const sessions = this.hub.sessions();
    if (sessions.length > 0) this.opts.log(`${why}: closing ${sessions.length} stream(s)`);
    for (const s of sessions) s.res.end();
  }

  async stop() {
    clearInterval(this.heartbeat);
    this.dropAll('stopping');
    await Promise.allSettled([this.client.quit(), this.subscriber.quit()]);
  }

  ready() {
    return this.client.isReady && this.subscriber.isReady;
  }

  // The node:http request handler.
  handle(req, res) {
    const url = new URL(req.url, 'http://gateway');
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      return reply(res, 405, 'text/plain', 'method not allowed\n', { Allow: 'GET, HEAD' });
    }
    if (url.pathname === '/healthz') {
      const ok = this.ready();
      const body = JSON.stringify({ status: ok ? 'ok' : 'unavailable', ...this.stats }) + '\n';
      return reply(res, ok ? 200 : 503, 'application/json', body);
    }
    if (url.pathname.startsWith('/events/')) {
      let channel;
      try {
        channel = decodeURIComponent(url.pathname.slice('/events/'.length));
      } catch {
        channel = '';
      }
      if (!channel.startsWith(this.opts.channelPrefix) || channel.length > 1024) {
        return reply(res, 404, 'text/plain', `no such channel (channels start with ${this.opts.channelPrefix})\n`);
      }
      return this.stream(req, res, channel);
    }
    const file = STATIC.get(url.pathname);
    if (file) {
      return readFile(path.join(PUBLIC_DIR, file[0])).then(
        (body) => reply(res, 200, file[1], body),
        (err) => reply(res, 500, 'text/plain', `${err.message}\n`),
      );
    }
    return reply(res, 404, 'text/plain', 'not found\n');
  }

  async stream(req, res, channel) {
    // EventSource sends the id of the last event it received when it
    // reconnects. An id that is not a stream id cannot be resumed from, and
    // is answered like an id older than the history: with a reset.
    const header = req.headers['last-event-id'];
    const lastEventId = header === undefined || header === '' ? null : header;
    res.writeHead(200, {
      'Content-Type': 'text/event-stream; charset=utf-8',
      'Cache-Control': 'no-cache, no-transform',
      Connection: 'keep-alive',
      'X-Accel-Buffering': 'no', // nginx: do not buffer the stream
    });
    res.write(`retry: ${this.opts.retryMs}\n\n`);
    if (req.method === 'HEAD') return res.end();

    const session = new Session(this, channel, res);
    this.stats.clients++;
    this.stats.joins++;
    const done = () => {
      if (session.closed) return;
      session.closed = true;
      this.stats.clients--;
      this.hub.remove(session);
    };
    res.on('close', done);
    // A client's broken socket concerns that client only; 'close' follows.
    res.on('error', () => {});
    try {
      await this.hub.add(session);
      if (session.closed) return;
      let after = null;
      if (lastEventId !== null) {
        after = normalizeId(lastEventId) ?? '0-0';
        if (after === '0-0') {
          // Not an id this gateway sent: treat as older than any history.
          this.stats.resets++;
          session.send(`event: reset\nid:\ndata: ${JSON.stringify({ reason: 'invalid', last_event_id: lastEventId })}\n\n`);
          after = null;
        }
      }
      await session.catchUp(after);
    } catch (err) {
      this.opts.log(`${channel}: ${err.message}`);
      res.destroy();
      done();
    }
  }
}

function reply(res, status, type, body, headers = {}) {
  res.writeHead(status, { 'Content-Type': type, 'Cache-Control': 'no-store', ...headers });
  res.end(res.req.method === 'HEAD' ? undefined : body);
}
