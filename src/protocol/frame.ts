// Framing: [u32 length][u8 type][u32 request id][msgpack body].
//
// `length` counts the bytes after itself (type + id + body). The decoder
// checks it against frameBytesMax before allocating anything, so a bogus or
// hostile length prefix costs nothing. A frame error is final for the
// connection: after it the byte stream cannot be trusted to be in sync.

import { limits } from '../limits.js';
import { pack, unpack } from './codec.js';

export const frameHeaderBytes = 9;
/** Bytes after the length field that every frame has: type and request id. */
const minLength = 5;

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
  private buf: Buffer = Buffer.alloc(0);

  constructor(private readonly frameBytesMax: number = limits.frameBytesMax) {}

  /** Bytes of an incomplete frame held back. */
  get pendingBytes(): number {
    return this.buf.length;
  }

  /** Appends bytes and returns every complete frame; throws FrameError. */
  push(chunk: Buffer): Frame[] {
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    const frames: Frame[] = [];
    let off = 0;
    while (this.buf.length - off >= 4) {
      const length = this.buf.readUInt32BE(off);
      if (length + 4 > this.frameBytesMax) {
        throw new FrameError('TOO_LARGE', `frame of ${length + 4} bytes exceeds the limit of ${this.frameBytesMax}`);
      }
      if (length < minLength) throw new FrameError('PROTOCOL_ERROR', `frame length ${length} is shorter than a header`);
      if (this.buf.length - off < 4 + length) break;
      const type = this.buf.readUInt8(off + 4);
      const id = this.buf.readUInt32BE(off + 5);
      const bodyBytes = this.buf.subarray(off + frameHeaderBytes, off + 4 + length);
      let body: unknown;
      try {
        body = bodyBytes.length === 0 ? null : unpack(bodyBytes);
      } catch (err) {
        throw new FrameError('PROTOCOL_ERROR', `frame body is not msgpack: ${(err as Error).message}`, id);
      }
      frames.push({ type, id, body });
      off += 4 + length;
    }
    this.buf = off === 0 ? this.buf : this.buf.subarray(off);
    // A partial frame keeps a view into a large chunk alive; copy when small.
    if (this.buf.length > 0 && off > 0 && this.buf.length < 4096) this.buf = Buffer.from(this.buf);
    return frames;
  }
}
