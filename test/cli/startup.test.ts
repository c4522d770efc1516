// `tunekv --version`, `--help` and `get` load only what they need: no
// server, LevelDB, prom-client, launcher, benchmark or simulator code
// (each command imports its code when it runs). Checked with a module
// resolve hook that lists every module the process loads.
import t from 'tap';
import type { Test } from 'tap';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { pathToFileURL } from 'node:url';
import { cliEntry } from '../../cluster/launcher.js';

const heavy = /\/src\/server\/|node_modules\/(classic-level|level|abstract-level|prom-client|hdr-histogram-js)\/|\/cluster\/launcher|\/bench\/|\/src\/sim\//;

function loaded(t: Test, ...args: string[]): string[] {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tunekv-startup-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const hook = path.join(dir, 'hook.mjs');
  fs.writeFileSync(hook, `export async function resolve(spec, ctx, next) { const r = await next(spec, ctx); process.stderr.write('LOADED ' + r.url + '\\n'); return r; }\n`);
  const register = path.join(dir, 'register.mjs');
  fs.writeFileSync(register, `import { register } from 'node:module'; register(${JSON.stringify(pathToFileURL(hook).href)});\n`);
  const r = spawnSync(process.execPath, ['--import', pathToFileURL(register).href, cliEntry, ...args], { encoding: 'utf8', timeout: 30_000 });
  return r.stderr.split('\n').filter((l) => l.startsWith('LOADED ')).map((l) => l.slice(7));
}

t.test('light commands load no server code', async (t) => {
  for (const args of [['--version'], ['--help'], ['get', 'k', '--host', '127.0.0.1:1', '--timeout-ms', '200'], ['put', 'k', 'v', '--host', '127.0.0.1:1', '--timeout-ms', '200']]) {
    const mods = loaded(t, ...args);
    t.ok(mods.some((m) => m.endsWith('/cli/main.js')), `${args[0]}: the hook saw the modules`);
    t.same(mods.filter((m) => heavy.test(m)), [], `${args.join(' ')} loads none of the server, LevelDB, prom-client, launcher, bench or sim`);
  }
  const get = loaded(t, 'get', 'k', '--host', '127.0.0.1:1', '--timeout-ms', '200');
  t.ok(get.some((m) => m.includes('/client/client.js')), 'get loads the client');
  t.notOk(loaded(t, '--version').some((m) => m.includes('/client/')), '--version does not');
});
