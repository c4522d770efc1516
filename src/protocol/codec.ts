// msgpack encoding shared by wire and disk.
//
// One Packr configured once: plain maps (no record extensions) so any
// msgpack implementation can read a frame; integers beyond 2^53 are refused
// by validation rather than silently rounded.

import { Packr } from 'msgpackr';

const packr = new Packr({ useRecords: false, moreTypes: false, bundleStrings: false });

export function pack(value: unknown): Buffer {
  return packr.pack(value);
}

export function unpack(bytes: Uint8Array): unknown {
  return packr.unpack(bytes);
}
