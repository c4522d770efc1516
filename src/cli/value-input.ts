// Where `tunekv put KEY VALUE` takes its value from: the argument itself,
// stdin (`-`), or a file (`@FILE`); `--literal` takes the argument as given
// (`-` and `@x` are then those strings). Stdin and files give the exact
// bytes (a bytes value: nothing decoded, no newline stripped); an argument
// gives a string. Every source is bounded by valueBytesMax: reading stops
// one byte past it and the put fails with TOO_LARGE before connecting.

import { tooLarge } from '../errors.js';
import { limits } from '../limits.js';
import { readFileUpTo } from './connection.js';
import { UsageError } from './exit-codes.js';

/** The value of a put, checked against valueBytesMax. */
export async function readValueArg(arg: string, literal: boolean): Promise<string | Uint8Array> {
  if (literal || (arg !== '-' && !arg.startsWith('@'))) {
    const size = Buffer.byteLength(arg, 'utf8');
    if (size > limits.valueBytesMax) throw tooLarge('the value', size, limits.valueBytesMax);
    return arg;
  }
  if (arg === '-') return readStdin(limits.valueBytesMax);
  const file = arg.slice(1);
  if (file.length === 0) throw new UsageError('@ needs a file name (@FILE), or --literal to store "@"');
  const { bytes, over, size } = readFileUpTo(file, limits.valueBytesMax, 'value file');
  if (over) throw tooLarge(`the value in ${file}`, size, limits.valueBytesMax);
  return new Uint8Array(bytes);
}

/** stdin up to bytesMax; one chunk past it stops the read and fails. */
async function readStdin(bytesMax: number): Promise<Uint8Array> {
  if (process.stdin.isTTY === true) process.stderr.write('# reading the value from stdin; end it with Ctrl-D\n');
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of process.stdin) {
    const b = chunk as Buffer;
    size += b.length;
    if (size > bytesMax) {
      process.stdin.destroy();
      throw tooLarge('the value on stdin (at least)', size, bytesMax);
    }
    chunks.push(b);
  }
  return new Uint8Array(Buffer.concat(chunks, size));
}
