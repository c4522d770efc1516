// Preloaded into tunekv node processes by the benchmark's profile phase,
// through NODE_OPTIONS="--require <this file>" (NODE_OPTIONS does not take
// --cpu-prof). Dormant unless TUNEKV_PROFILE_DIR is set; then the first
// SIGUSR2 starts node:inspector's sampling profiler and the second stops it
// and writes <dir>/<node id>-<pid>.cpuprofile (Chrome DevTools format), so
// the bench profiles exactly the cell it measures and nothing before it.
// Compiled to dist/bench/profile-preload.cjs (a .cts file becomes CommonJS).

import fs = require('node:fs');
import inspector = require('node:inspector');
import path = require('node:path');

/** Sampling interval: 200 µs sees functions of a few µs per request over
 * a few seconds without slowing the process much. */
const samplingIntervalUs = 200;

function label(): string {
  const i = process.argv.indexOf('--id');
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1]! : path.basename(process.argv[1] ?? 'node', '.js');
}

function install(dir: string): void {
  let session: inspector.Session | undefined;
  let on = false;
  process.on('SIGUSR2', () => {
    if (!on) {
      session = new inspector.Session();
      session.connect();
      session.post('Profiler.enable');
      session.post('Profiler.setSamplingInterval', { interval: samplingIntervalUs });
      session.post('Profiler.start');
      on = true;
      return;
    }
    on = false;
    const s = session!;
    s.post('Profiler.stop', (err, res) => {
      if (!err) {
        const file = path.join(dir, `${label()}-${process.pid}.cpuprofile`);
        fs.writeFileSync(`${file}.tmp`, JSON.stringify(res.profile));
        fs.renameSync(`${file}.tmp`, file); // whole or absent: the bench polls for it
      }
      s.disconnect();
    });
  });
}

const profileDir = process.env.TUNEKV_PROFILE_DIR;
if (profileDir !== undefined && profileDir !== '') install(profileDir);
