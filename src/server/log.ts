// A node's log: one JSON line per event, through pino.
//
// Every line carries `level` (a label: info, warn, ...), `time` (ISO 8601),
// `node` (the node's id) and `event` (a stable name such as `peer_down`),
// plus the event's own fields. Older free-text lines of the node are events
// too: `event: "note"` with the text in `msg`.
//
// Invariants: no line per request (callers log state changes and per-round
// summaries, never per key); an event name that repeats faster than
// logEventsPerWindowMax per logWindowMs is cut off for the rest of the
// window and one `log_suppressed` line then says how many were dropped, so
// a flapping peer or a failing disk cannot fill the disk with its log. The
// pure core never logs: the server shell logs what the core's effects and
// the node's state changes tell it.

import fs from 'node:fs';
import pino from 'pino';
import type { Logger } from 'pino';
import { limits } from '../limits.js';

export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace';
export const logLevels: readonly LogLevel[] = ['fatal', 'error', 'warn', 'info', 'debug', 'trace'];

/** An event's own fields (never `level`, `time`, `node` or `event`). */
export type EventFields = Record<string, unknown>;

/** Where the node's server code sends its events. */
export interface EventLog {
  event(level: LogLevel, name: string, fields?: EventFields): void;
}

/** Drops every event (tests, the simulator without logging). */
export const silentEvents: EventLog = { event() {} };

const { logEventsPerWindowMax, logWindowMs } = limits;
/** Distinct event names tracked by the limiter: the names are a fixed set
 * in the code, so this is a guard, not a working limit. */
const trackedEventsMax = 256;

interface Window { startMs: number; count: number; suppressed: number; level: LogLevel }

/** Counts events per name per window; says whether one may be written and
 * reports what a closed window suppressed. Time comes from the caller. */
export class EventRateLimit {
  private readonly windows = new Map<string, Window>();

  constructor(private readonly perWindowMax: number = logEventsPerWindowMax, private readonly windowMs: number = logWindowMs) {}

  /** May this event be written now? `closed` lists windows that ended with
   * suppressed events (to report before this one). */
  admit(name: string, level: LogLevel, nowMs: number): { ok: boolean; closed: { name: string; suppressed: number; level: LogLevel }[] } {
    const closed: { name: string; suppressed: number; level: LogLevel }[] = [];
    let w = this.windows.get(name);
    if (w && nowMs - w.startMs >= this.windowMs) {
      if (w.suppressed > 0) closed.push({ name, suppressed: w.suppressed, level: w.level });
      this.windows.delete(name);
      w = undefined;
    }
    if (!w) {
      if (this.windows.size >= trackedEventsMax) this.evictOldest(nowMs, closed);
      w = { startMs: nowMs, count: 0, suppressed: 0, level };
      this.windows.set(name, w);
    }
    if (w.count < this.perWindowMax) {
      w.count++;
      return { ok: true, closed };
    }
    w.suppressed++;
    return { ok: false, closed };
  }

  private evictOldest(nowMs: number, closed: { name: string; suppressed: number; level: LogLevel }[]): void {
    for (const [name, w] of this.windows) {
      if (nowMs - w.startMs < this.windowMs && this.windows.size < trackedEventsMax) continue;
      if (w.suppressed > 0) closed.push({ name, suppressed: w.suppressed, level: w.level });
      this.windows.delete(name);
      if (this.windows.size < trackedEventsMax) return;
    }
  }
}

export interface NodeLoggerOptions {
  readonly node: string;
  /** Lowest level written; info by default. */
  readonly level?: LogLevel;
  /** A file to append to, or a file descriptor (1: stdout, the default). */
  readonly destination?: string | number;
  /** Milliseconds now, for the rate limit (Date.now by default). */
  readonly nowMs?: () => number;
}

/** A node's logger: JSON lines, rate-limited per event name. */
export class NodeLogger implements EventLog {
  readonly pino: Logger;
  private readonly limit = new EventRateLimit();
  private readonly nowMs: () => number;

  constructor(opts: NodeLoggerOptions) {
    const level = opts.level ?? 'info';
    if (!logLevels.includes(level)) throw new TypeError(`log level (${String(level)}) must be one of ${logLevels.join(', ')}`);
    const dest = opts.destination ?? 1;
    if (typeof dest === 'string') fs.closeSync(fs.openSync(dest, 'a'));
    // Synchronous writes: a node logs a few lines a second at most (no
    // request is logged), and a line written before process.exit must not
    // be lost in a buffer.
    const stream = pino.destination({ dest, sync: true, append: true, mkdir: false });
    this.pino = pino({
      level,
      base: { node: opts.node },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    }, stream);
    this.nowMs = opts.nowMs ?? Date.now;
  }

  event(level: LogLevel, name: string, fields: EventFields = {}): void {
    if (!this.pino.isLevelEnabled(level)) return;
    const { ok, closed } = this.limit.admit(name, level, this.nowMs());
    for (const c of closed) {
      this.pino[c.level]({ event: 'log_suppressed', suppressedEvent: c.name, count: c.suppressed, windowMs: logWindowMs });
    }
    if (!ok) return;
    const { msg, ...rest } = fields;
    if (typeof msg === 'string') this.pino[level]({ ...rest, event: name }, msg);
    else this.pino[level]({ ...rest, event: name });
  }

  /** The node's free-text lines, as `note` events. */
  line(text: string): void {
    this.event('info', 'note', { msg: text });
  }
}

/** Events as text lines, for callers that still take lines (the simulator
 * and tests that collect a node's log as strings). */
export function eventsAsLines(log: (line: string) => void): EventLog {
  return {
    event(level, name, fields = {}) {
      log(`${level} ${name} ${JSON.stringify(fields)}`);
    },
  };
}

/** Parses a `--log-level` value. */
export function parseLogLevel(value: string | undefined): LogLevel {
  if (value === undefined) return 'info';
  if (!(logLevels as readonly string[]).includes(value)) throw new TypeError(`--log-level (${value}) must be one of ${logLevels.join(', ')}`);
  return value as LogLevel;
}
