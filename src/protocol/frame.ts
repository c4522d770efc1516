// Framing: [u32 length][u8 type][u32 request id][msgpack body].
//
// `length` counts the bytes after itself (type + id + body). The decoder
// checks it against the current frame limit as soon as its 4 bytes are in,
// before holding anything past the header, so a bogus or hostile length
// prefix costs nothing. A frame error is final for the connection: after it
// the byte stream cannot be trusted to be in sync.
//
// The decoder is linear in the bytes received: chunks are kept as a list and
// each frame is assembled once, with one copy (or none, when it lies inside
// one chunk). Joining the buffer with every chunk instead costs O(n^2) for a
// large frame arriving in socket-sized pieces (32 MiB in 64 KiB chunks spent
// about 6 s of CPU). Bodies are decoded under DecodeBounds (codec.ts), which
// the server tightens for clients and loosens for peers after the handshake.

import { limits } from '../limits.js';
import { WireBoundsError, checkBounds, pack, peerBounds, unpack } from './codec.js';
import type { DecodeBounds } from './codec.js';

export const frameHeaderBytes = 9;
/** Bytes after the length field that every frame has: type and request id. */
const minLength = 5;
/** A partial frame left at the end of a chunk is copied out when shorter than
 * this, so a few bytes do not keep a whole socket chunk alive. */
const pendingCopyBytesMax = 4096;
/** A chunk shorter than this is joined onto a short last chunk instead of
 * listed on its own. A peer dribbling a frame a byte per TCP segment would
 * otherwise cost a Buffer object (some hundred bytes) per byte held; joining
 * copies at most 2 x this per push, so the decoder stays linear. */
const chunkJoinBytesMax = 4096;

export interface Frame {
  readonly type: number;
  readonly id: number;
  readonly body: unknown;
}

export class FrameError extends Error {
  constructor(readonly code: 'PROTOCOL_ERROR' | 'TOO_LARGE', message: string, readonly id = 0) {
    super(message);
    this.name = 'FrameError';
  }
}

export type ConnectionStage = 'handshake' | 'client' | 'peer';

/** The largest frame (header + body) a connection at `stage` may send us. */
export function frameLimitFor(stage: ConnectionStage): number {
  switch (stage) {
    case 'handshake': return limits.handshakeFrameBytesMax;
    case 'client': return limits.clientFrameBytesMax;
    case 'peer': return limits.frameBytesMax;
    default: {
      const never: never = stage;
      throw new TypeError(`unknown connection stage ${String(never)}`);
    }
  }
}

export function encodeFrame(type: number, id: number, body: unknown): Buffer {
  const payload = pack(body ?? null);
  const out = Buffer.allocUnsafe(frameHeaderBytes + payload.length);
  out.writeUInt32BE(minLength + payload.length, 0);
  out.writeUInt8(type, 4);
  out.writeUInt32BE(id >>> 0, 5);
  payload.copy(out, frameHeaderBytes);
  return out;
}

/** Incremental decoder for one connection's byte stream. */
export class FrameDecoder {
  /** Received bytes not yet returned as frames; the first `head` bytes of
   * chunks[0] are already consumed. */
  private chunks: Buffer[] = [];
  private head = 0;
  private bytes = 0;
  private frameBytesMax: number;
  private bounds: DecodeBounds = peerBounds;

  constructor(frameBytesMax: number = limits.frameBytesMax) {
    checkFrameBytesMax(frameBytesMax);
    this.frameBytesMax = frameBytesMax;
  }

  /** Bytes of an incomplete frame held back. */
  get pendingBytes(): number {
    return this.bytes;
  }

  /** The largest frame (header + body) accepted from now on; checked against
   * the length prefix of the frame in progress at the next push. */
  setFrameBytesMax(n: number): void {
    checkFrameBytesMax(n);
    this.frameBytesMax = n;
  }

  /** Depth and element bounds for the bodies of the following frames. */
  setBounds(bounds: DecodeBounds): void {
    checkBounds(bounds);
    this.bounds = bounds;
  }

  /** Appends bytes and returns every complete frame; throws FrameError. */
  push(chunk: Buffer): Frame[] {
    const frames: Frame[] = [];
    this.feed(chunk, (f) => { frames.push(f); return true; });
    return frames;
  }

  /**
   * Appends bytes and hands each complete frame to `onFrame` as soon as it
   * is decoded, so a handler can change the limits (setFrameBytesMax,
   * setBounds) before the next frame of the same chunk is checked: a
   * client pipelines its first request right behind HELLO, and that
   * request is judged by the limits its handshake earned. `onFrame`
   * returns false to stop (the connection is closing). Throws FrameError.
   */
  feed(chunk: Buffer, onFrame: (frame: Frame) => boolean): void {
    this.append(chunk);
    while (this.bytes >= 4) {
      const length = this.peekLength();
      if (length + 4 > this.frameBytesMax) {
        throw new FrameError('TOO_LARGE', `frame of ${length + 4} bytes exceeds the limit of ${this.frameBytesMax}`);
      }
      if (length < minLength) throw new FrameError('PROTOCOL_ERROR', `frame length ${length} is shorter than a header`);
      if (this.bytes < 4 + length) break;
      if (!onFrame(decodeFrame(this.take(4 + length), this.bounds))) return;
    }
    this.releaseSpentChunk();
  }

  /** Lists a chunk, or joins it onto a short last chunk (chunkJoinBytesMax). */
  private append(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.bytes += chunk.length;
    const last = this.chunks.length - 1;
    const start = last === 0 ? this.head : 0;
    const prev = this.chunks[last];
    if (prev === undefined || chunk.length >= chunkJoinBytesMax || prev.length - start >= chunkJoinBytesMax) {
      this.chunks.push(chunk);
      return;
    }
    this.chunks[last] = Buffer.concat([prev.subarray(start), chunk]);
    if (last === 0) this.head = 0;
  }

  /** The u32 length prefix at the read position; its 4 bytes may span chunks. */
  private peekLength(): number {
    const first = this.chunks[0]!;
    if (first.length - this.head >= 4) return first.readUInt32BE(this.head);
    let length = 0;
    let chunkIndex = 0;
    let at = this.head;
    for (let i = 0; i < 4; i++) {
      while (at >= this.chunks[chunkIndex]!.length) {
        chunkIndex++;
        at = 0;
      }
      length = length * 256 + this.chunks[chunkIndex]![at]!;
      at++;
    }
    return length;
  }

  /** Removes the next `n` bytes (all present) and returns them: a view when
   * they lie in the first chunk, otherwise one copy. */
  private take(n: number): Buffer {
    const first = this.chunks[0]!;
    this.bytes -= n;
    if (first.length - this.head >= n) {
      const out = first.subarray(this.head, this.head + n);
      this.head += n;
      if (this.head === first.length) this.dropChunks(1);
      return out;
    }
    const out = Buffer.allocUnsafe(n);
    let filled = 0;
    let used = 0;
    while (filled < n) {
      const c = this.chunks[used]!;
      const start = used === 0 ? this.head : 0;
      const count = Math.min(c.length - start, n - filled);
      c.copy(out, filled, start, start + count);
      filled += count;
      if (start + count < c.length) {
        this.dropChunks(used);
        this.head = start + count;
        return out;
      }
      used++;
    }
    this.dropChunks(used);
    return out;
  }

  /** Forgets the first `count` chunks (fully consumed); one splice per frame
   * keeps this linear in the chunks a frame spans. */
  private dropChunks(count: number): void {
    if (count === 0) return;
    this.chunks.splice(0, count);
    this.head = 0;
  }

  /** A short partial frame at the end of a big chunk is copied out: the rest
   * of the chunk is spent and should not stay alive for it. Costs at most the
   * chunk's length, so the decoder stays linear. */
  private releaseSpentChunk(): void {
    if (this.chunks.length !== 1 || this.head === 0) return;
    if (this.bytes >= pendingCopyBytesMax) return;
    this.chunks[0] = Buffer.from(this.chunks[0]!.subarray(this.head));
    this.head = 0;
  }
}

/** One whole frame, length prefix included, into its parts. */
function decodeFrame(frame: Buffer, bounds: DecodeBounds): Frame {
  const type = frame.readUInt8(4);
  const id = frame.readUInt32BE(5);
  const body = frame.length === frameHeaderBytes ? null : decodeBody(frame.subarray(frameHeaderBytes), bounds, id);
  return { type, id, body };
}

function decodeBody(bytes: Buffer, bounds: DecodeBounds, id: number): unknown {
  try {
    return unpack(bytes, bounds);
  } catch (err) {
    // Bounds messages name the broken rule and never quote the input; other
    // decoder messages might, so they are not passed on.
    const why = err instanceof WireBoundsError ? err.message : 'it is not valid msgpack';
    throw new FrameError('PROTOCOL_ERROR', `frame body refused: ${why}`, id);
  }
}

/** API misuse is a TypeError: a frame limit below a header, or past what the
 * u32 length prefix can express. */
function checkFrameBytesMax(n: number): void {
  if (!Number.isSafeInteger(n) || n < frameHeaderBytes || n > 0xffffffff + 4) {
    throw new TypeError(`frameBytesMax (${String(n)}) must be an integer from ${frameHeaderBytes} to ${0xffffffff + 4}`);
  }
}
