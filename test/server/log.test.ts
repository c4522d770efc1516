// The node's log: one JSON line per event with level, time, node and
// event; a rate limit per event name with one log_suppressed line per
// window that dropped any.
import t from 'tap';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { EventRateLimit, NodeLogger, parseLogLevel } from '../../src/server/log.js';
import { limits } from '../../src/limits.js';

function tmpFile(t: { teardown(fn: () => void): void }): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tunekv-log-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  return path.join(dir, 'n1.log');
}

function lines(file: string): Record<string, unknown>[] {
  return fs.readFileSync(file, 'utf8').split('\n').filter((l) => l.length > 0).map((l) => JSON.parse(l) as Record<string, unknown>);
}

t.test('each event is one JSON line with level, time, node, event and its fields', async (t) => {
  const file = tmpFile(t);
  const log = new NodeLogger({ node: 'n1', destination: file });
  log.event('warn', 'peer_down', { peer: 'n3', from: 'suspect' });
  log.event('info', 'note', { msg: 'a free-text line' });
  log.event('debug', 'peer_up', { peer: 'n3' });
  const got = lines(file);
  t.equal(got.length, 2, 'debug is below the default level (info)');
  t.match(got[0], { level: 'warn', node: 'n1', event: 'peer_down', peer: 'n3', from: 'suspect' });
  t.match(got[0]!.time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/, 'time is ISO 8601');
  t.match(got[1], { level: 'info', event: 'note', msg: 'a free-text line' });
});

t.test('the file is appended to, never truncated', async (t) => {
  const file = tmpFile(t);
  fs.writeFileSync(file, '{"earlier":true}\n');
  new NodeLogger({ node: 'n1', destination: file }).event('info', 'node_starting', {});
  const got = lines(file);
  t.equal(got.length, 2);
  t.same(got[0], { earlier: true });
});

t.test('--log-level: debug lets debug through; unknown levels are refused', async (t) => {
  const file = tmpFile(t);
  const log = new NodeLogger({ node: 'n1', destination: file, level: parseLogLevel('debug') });
  log.event('debug', 'x', {});
  t.equal(lines(file).length, 1);
  t.throws(() => parseLogLevel('loud'), TypeError);
  t.equal(parseLogLevel(undefined), 'info');
});

t.test('a repeating event is cut off per window and the drop is reported once', async (t) => {
  const file = tmpFile(t);
  let now = 0;
  const log = new NodeLogger({ node: 'n1', destination: file, nowMs: () => now });
  const max = limits.logEventsPerWindowMax;
  for (let i = 0; i < max + 30; i++) log.event('warn', 'peer_down', { peer: 'n2', i });
  log.event('info', 'peer_up', { peer: 'n2' });
  t.equal(lines(file).filter((l) => l.event === 'peer_down').length, max, 'at most the limit per window');
  t.equal(lines(file).filter((l) => l.event === 'peer_up').length, 1, 'other event names have their own budget');
  now += limits.logWindowMs;
  log.event('warn', 'peer_down', { peer: 'n2' });
  const got = lines(file);
  const suppressed = got.filter((l) => l.event === 'log_suppressed');
  t.equal(suppressed.length, 1);
  t.match(suppressed[0], { suppressedEvent: 'peer_down', count: 30 });
  t.equal(got[got.length - 1]!.event, 'peer_down', 'the new window writes again');
});

t.test('the limiter alone: windows per name', async (t) => {
  const rl = new EventRateLimit(2, 1000);
  t.ok(rl.admit('a', 'info', 0).ok);
  t.ok(rl.admit('a', 'info', 1).ok);
  t.notOk(rl.admit('a', 'info', 2).ok);
  t.ok(rl.admit('b', 'info', 2).ok);
  const next = rl.admit('a', 'info', 1000);
  t.ok(next.ok);
  t.same(next.closed, [{ name: 'a', suppressed: 1, level: 'info' }]);
});
