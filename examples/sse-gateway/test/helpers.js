// SPDX-License-Identifier: Apache-2.0
// helpers.js - what the gateway's tests need around real servers: a
// redis-server (the test stack's, from K2R_TEST_REDIS_PORT, or one of its own
// on a free loopback port in a temporary folder, stopped when the tests end),
// the gateway as a child process, an SSE client that keeps every event it
// receives, and waits that poll a condition against a deadline scaled by
// K2R_TEST_TIMEOUT_MULTIPLIER. Nothing here sleeps to synchronise.

import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createClient } from 'redis';

export const GATEWAY_DIR = path.join(path.dirname(fileURLToPath(import.meta.url)), '..');
const MULTIPLIER = Number(process.env.K2R_TEST_TIMEOUT_MULTIPLIER) > 0 ? Number(process.env.K2R_TEST_TIMEOUT_MULTIPLIER) : 1;

export function scaled(ms) {
  return ms * MULTIPLIER;
}

// Polls cond() (which may be async) every `every` ms until it is true; throws
// naming `what` (and what describe() says) when `ms` (scaled) pass first.
export async function waitFor(what, cond, ms = 10000, describe = () => '', every = 10) {
  const deadline = Date.now() + scaled(ms);
  for (;;) {
    if (await cond()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${scaled(ms)} ms waiting for ${what} ${describe()}`);
    await new Promise((resolve) => setTimeout(resolve, every)); // polling interval
  }
}

// A loopback port nothing listens on right now.
export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

let ownRedis = null;
const children = new Set();

function killChildren() {
  for (const child of children) child.kill('SIGKILL');
}
process.on('exit', killChildren);

async function redisAnswers(url) {
  const c = createClient({ url, socket: { reconnectStrategy: false } });
  c.on('error', () => {});
  try {
    await c.connect();
    await c.ping();
    await c.quit();
    return true;
  } catch {
    return false;
  }
}

const STACK_SH = path.join(GATEWAY_DIR, '..', '..', 'scripts', 'stack.sh');

function runStackSh(verb) {
  const r = spawnSync(STACK_SH, [verb, process.env.K2R_TEST_STACK_DIR], { stdio: ['ignore', 'ignore', 'inherit'] });
  if (r.status !== 0) throw new Error(`scripts/stack.sh ${verb} failed (${r.status})`);
}

// The Redis the tests run against: { url, port, restart(), stop() }. The
// stack's when scripts/with-stack.sh runs the tests (restarted through
// scripts/stack.sh), else its own, without persistence either.
export async function startRedis() {
  if (process.env.K2R_TEST_REDIS_PORT) {
    const port = Number(process.env.K2R_TEST_REDIS_PORT);
    return {
      url: `redis://127.0.0.1:${port}`,
      port,
      restart: async () => {
        runStackSh('stop-redis');
        runStackSh('start-redis');
      },
      stop: async () => {},
    };
  }
  if (ownRedis) return ownRedis;
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sse-gateway-redis.'));
  const port = await freePort();
  const url = `redis://127.0.0.1:${port}`;
  let child = null;
  const launch = async () => {
    child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir], {
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    children.add(child);
    await waitFor(`redis-server on port ${port}`, () => redisAnswers(url));
  };
  const halt = async () => {
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    await exited;
    children.delete(child);
  };
  await launch();
  ownRedis = {
    url,
    port,
    restart: async () => {
      await halt();
      await launch();
    },
    stop: async () => {
      await halt();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return ownRedis;
}

export async function redisClient(url) {
  const c = createClient({ url });
  c.on('error', () => {});
  await c.connect();
  return c;
}

// Starts server.js on `port` (0: any free one); resolves once it listens.
export async function startGateway({ redisUrl, port = 0, extraArgs = [] }) {
  const child = spawn(process.execPath, ['server.js', '--listen', `127.0.0.1:${port}`, '--redis', redisUrl, ...extraArgs], {
    cwd: GATEWAY_DIR,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(child);
  let out = '';
  let err = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (err += d));
  let exited = null;
  child.once('exit', (code, signal) => (exited = { code, signal }));
  await waitFor('the gateway to listen', () => /listening on /.test(out) || exited !== null, 15000, () => err);
  if (exited) throw new Error(`gateway exited ${JSON.stringify(exited)}: ${err}`);
  const url = /listening on (\S+)/.exec(out)[1];
  return {
    url,
    port: Number(new URL(url).port),
    child,
    log: () => err,
    // SIGTERM (or `signal`), resolves when it exited.
    stop: async (signal = 'SIGTERM') => {
      if (exited === null) {
        const gone = new Promise((resolve) => child.once('exit', resolve));
        child.kill(signal);
        await gone;
      }
      children.delete(child);
      return exited;
    },
  };
}

// GET url -> { status, headers, body } (for the non-streaming endpoints).
export function get(url, headers = {}) {
  return new Promise((resolve, reject) => {
    http
      .get(url, { headers }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d) => (body += d));
        res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body }));
      })
      .on('error', reject);
  });
}

// An SSE client on `url` that keeps every event ({ id, event, data }) it
// receives in `events`. close() cuts its connection (as a network failure
// would); connect(lastEventId) opens a new one, sending Last-Event-ID.
export class SseClient {
  constructor(url) {
    this.url = url;
    this.events = [];
    this.req = null;
    this.connected = false;
    this.lastEventId = null; // as EventSource keeps it
  }

  connect(lastEventId = this.lastEventId) {
    return new Promise((resolve, reject) => {
      const headers = { Accept: 'text/event-stream' };
      if (lastEventId) headers['Last-Event-ID'] = lastEventId;
      this.req = http.get(this.url, { headers }, (res) => {
        if (res.statusCode !== 200) {
          reject(new Error(`${this.url}: HTTP ${res.statusCode}`));
          res.resume();
          return;
        }
        this.connected = true;
        res.setEncoding('utf8');
        let pending = '';
        let ev = { id: undefined, event: 'message', data: [] };
        res.on('data', (chunk) => {
          pending += chunk;
          let nl;
          while ((nl = pending.indexOf('\n')) >= 0) {
            const line = pending.slice(0, nl).replace(/\r$/, '');
            pending = pending.slice(nl + 1);
            if (line === '') {
              if (ev.id !== undefined) this.lastEventId = ev.id;
              if (ev.data.length > 0) this.events.push({ id: ev.id ?? null, event: ev.event, data: ev.data.join('\n') });
              ev = { id: undefined, event: 'message', data: [] };
              continue;
            }
            if (line.startsWith(':')) continue;
            const colon = line.indexOf(':');
            const name = colon < 0 ? line : line.slice(0, colon);
            let value = colon < 0 ? '' : line.slice(colon + 1);
            if (value.startsWith(' ')) value = value.slice(1);
            if (name === 'id') ev.id = value;
            else if (name === 'event') ev.event = value;
            else if (name === 'data') ev.data.push(value);
          }
        });
        res.on('close', () => (this.connected = false));
        resolve();
      });
      this.req.on('error', (err) => {
        this.connected = false;
        if (!this.closing) reject(err);
      });
    });
  }

  close() {
    this.closing = true;
    this.req?.destroy();
    this.closing = false;
    this.connected = false;
  }

  messages() {
    return this.events.filter((e) => e.event === 'message');
  }
}
