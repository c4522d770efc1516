// A flood of half-done handshakes from one address must evict itself, not a
// login in progress from another address (red team finding F4: SCRAM
// clients hold a handshaking connection while they run scrypt).

import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { FrameDecoder, encodeFrame } from '../../src/protocol/frame.js';
import { MsgType, protocolVersion } from '../../src/protocol/messages.js';
import { limits } from '../../src/limits.js';
import { newNonce } from '../../src/security/handshake.js';
import { userLine } from '../../src/security/users.js';
import { testCluster } from '../helpers/cluster.js';

function open(host: string, port: number, localAddress: string, sockets: net.Socket[]): Promise<{ socket: net.Socket; closed: () => boolean; helloOk: Promise<boolean> }> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host, port, localAddress });
    sockets.push(socket);
    let isClosed = false;
    const decoder = new FrameDecoder();
    let gotHello: (ok: boolean) => void = () => {};
    const helloOk = new Promise<boolean>((r) => { gotHello = r; });
    socket.on('data', (chunk) => {
      try {
        for (const f of decoder.push(chunk)) if (f.type === MsgType.HELLO_OK) gotHello(true);
      } catch { /* ignore */ }
    });
    socket.on('close', () => { isClosed = true; gotHello(false); });
    socket.on('error', () => {});
    socket.once('connect', () => {
      socket.write(encodeFrame(MsgType.HELLO, 0, { protocol: protocolVersion, agent: 'flood', nonce: newNonce(), user: 'someone' }));
      resolve({ socket, closed: () => isClosed, helloOk });
    });
    socket.once('error', reject);
  });
}

t.test('a handshake flood from one address evicts its own connections first', async (t) => {
  // With a users file nobody is trusted before AUTH, so every half-done
  // login waits in the handshaking pool.
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tunekv-flood-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const usersFile = path.join(dir, 'users.txt');
  fs.writeFileSync(usersFile, `${await userLine('someone', 'pw', 'read')}\n`, { mode: 0o600 });
  const cluster = await testCluster(t, { nodes: 1, n: 1, nodeArgs: ['--users-file', usersFile] });
  const [host, portText] = cluster.hosts[0]!.split(':') as [string, string];
  const port = Number(portText);
  const sockets: net.Socket[] = [];
  t.teardown(() => { for (const s of sockets) s.destroy(); });
  // The login in progress: HELLO answered, AUTH not sent yet (the client is
  // running scrypt), from 127.0.0.2.
  const victim = await open(host, port, '127.0.0.2', sockets);
  t.ok(await victim.helloOk, 'the victim got HELLO_OK');
  // The flood: more half-done handshakes than the pool holds, from 127.0.0.1.
  const flood = [];
  for (let i = 0; i < limits.handshakingConnectionsMax + 50; i++) flood.push(await open(host, port, '127.0.0.1', sockets));
  await new Promise((r) => setTimeout(r, 300));
  const evicted = flood.filter((f) => f.closed()).length;
  t.ok(evicted >= 50, `the flood lost ${evicted} of its own connections`);
  t.notOk(victim.closed(), 'the login from another address is still open');
});
