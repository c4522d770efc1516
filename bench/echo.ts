// The floor: a plain node:net echo round trip between two processes on the
// same machine, measured in the same run as the store, so every store
// latency can be given as a ratio to what the machine's loopback and event
// loop cost anyway.

import { fork } from 'node:child_process';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import { newHistogram } from './histogram.js';
import type { Histogram } from './histogram.js';

/** Started as a child: an echo server that prints its port. */
function serve(): void {
  const server = net.createServer((s) => {
    s.setNoDelay(true);
    s.on('data', (d) => s.write(d));
  });
  server.listen(0, '127.0.0.1', () => process.send?.((server.address() as net.AddressInfo).port));
}

if (process.argv[2] === '--echo-server') serve();

/** Sequential round trips of `bytes` for durationMs after warmupMs. */
export async function measureEcho(durationMs: number, warmupMs: number, bytes = 128): Promise<Histogram> {
  const child = fork(fileURLToPath(import.meta.url), ['--echo-server'], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
  try {
    const port = await new Promise<number>((resolve, reject) => {
      child.once('message', (m) => resolve(m as number));
      child.once('exit', () => reject(new Error('echo server exited')));
    });
    const socket = net.connect({ host: '127.0.0.1', port });
    socket.setNoDelay(true);
    await new Promise<void>((r) => socket.once('connect', () => r()));
    const payload = Buffer.alloc(bytes, 0x61);
    const roundTrip = () => new Promise<void>((resolve) => {
      let got = 0;
      const onData = (d: Buffer) => {
        got += d.length;
        if (got >= bytes) { socket.off('data', onData); resolve(); }
      };
      socket.on('data', onData);
      socket.write(payload);
    });
    const h = newHistogram();
    const warmEnd = Date.now() + warmupMs;
    while (Date.now() < warmEnd) await roundTrip();
    const end = Date.now() + durationMs;
    while (Date.now() < end) {
      const t0 = process.hrtime.bigint();
      await roundTrip();
      h.recordValue(Math.max(1, Math.round(Number(process.hrtime.bigint() - t0) / 1000)));
    }
    socket.destroy();
    return h;
  } finally {
    child.kill();
  }
}
