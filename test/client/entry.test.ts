// `tunekv` (src/index.ts) and `tunekv/client` load no node code. Two
// checks: a walk of the value imports (not `import type`) of the sources,
// and a real import of the built entry in a fresh node process that
// records every module it loads (a resolve hook) and every native library
// (process.report's sharedObjects). A client process should not pay for (or
// be able to reach) what only a node needs: no src/server code, no LevelDB
// binding, no prom-client.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import t from 'tap';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

function valueImports(file: string): string[] {
  const src = fs.readFileSync(file, 'utf8');
  const out: string[] = [];
  for (const m of src.matchAll(/^\s*(import|export)\s+(type\s)?[^;]*?from\s+'([^']+)'/gm)) {
    if (m[2] !== undefined) continue;
    out.push(m[3]!);
  }
  return out;
}

function walk(entry: string): { files: Set<string>; packages: Set<string> } {
  const files = new Set<string>();
  const packages = new Set<string>();
  const visit = (f: string): void => {
    if (files.has(f)) return;
    files.add(f);
    for (const spec of valueImports(f)) {
      if (spec.startsWith('.')) visit(path.resolve(path.dirname(f), spec.replace(/\.js$/, '.ts')));
      else packages.add(spec);
    }
  };
  visit(entry);
  return { files, packages };
}

for (const entry of ['src/index.ts', 'src/client/index.ts']) {
  t.test(`${entry} reaches no node code (import walk)`, async (t) => {
    const { files, packages } = walk(path.join(root, entry));
    const rel = [...files].map((f) => path.relative(root, f));
    t.ok(rel.includes('src/client/client.ts'), 'the walk follows imports');
    t.ok(rel.includes('src/io/connection.ts'), 'and their imports');
    t.same(rel.filter((f) => f.startsWith('src/server') || f.startsWith('src/cli/') || f.startsWith('src/sim/') || f === 'src/config.ts'), [],
      'no server, CLI, simulator or node-config module');
    t.same([...packages].filter((p) => !p.startsWith('node:') && p !== 'msgpackr'), [], 'no package but msgpackr (no level, no prom-client)');
  });
}

t.test('the walk does see a node import in tunekv/server (the check can fail)', async (t) => {
  const { packages } = walk(path.join(root, 'src/server.ts'));
  t.ok([...packages].some((p) => p === 'level' || p === 'prom-client'), 'src/server.ts reaches level or prom-client');
});

/** Imports `entry` (a built file) in a fresh process; returns every module
 * URL it resolved and the native libraries loaded. */
function loaded(entry: string): { urls: string[]; natives: string[]; exports: string[] } {
  // The hook runs on the loader thread: it reports each resolved URL to the
  // main thread through the port initialize() receives.
  const hooks = `
    let port;
    export function initialize(data) { port = data.port; }
    export async function resolve(spec, ctx, next) { const r = await next(spec, ctx); port.postMessage(r.url); return r; }`;
  const script = `
    import { register } from 'node:module';
    import { MessageChannel } from 'node:worker_threads';
    const { port1, port2 } = new MessageChannel();
    const urls = [];
    port1.on('message', (u) => urls.push(u));
    port1.unref();
    register('data:text/javascript,' + encodeURIComponent(${JSON.stringify(hooks)}), { data: { port: port2 }, transferList: [port2] });
    const mod = await import(${JSON.stringify(pathToFileURL(entry).href)});
    await new Promise((r) => setTimeout(r, 100));
    const natives = process.report.getReport().sharedObjects.filter((s) => s.endsWith('.node'));
    console.log(JSON.stringify({ urls, natives, exports: Object.keys(mod) }));`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 60_000, cwd: root });
  if (r.status !== 0) throw new Error(`node exited ${r.status}: ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').pop()!) as { urls: string[]; natives: string[]; exports: string[] };
}

t.test('importing the built root entry loads no server code, LevelDB binding or prom-client', async (t) => {
  const built = path.join(root, 'dist/src/index.js');
  t.ok(fs.existsSync(built), 'dist is built (npm run build, or make build)');
  const { urls, natives, exports } = loaded(built);
  t.ok(exports.includes('connect') && exports.includes('TuneKvError'), 'the entry exports connect and TuneKvError');
  t.notOk(exports.includes('startNode'), 'but not startNode');
  t.ok(urls.some((u) => u.endsWith('/dist/src/client/client.js')), `the hook saw the client load (${urls.length} modules)`);
  t.same(urls.filter((u) => /\/dist\/src\/(server|cli|sim)\/|\/dist\/src\/config\.js|node_modules\/(level|classic-level|prom-client|abstract-level)\//.test(u)), [],
    'no server, CLI, simulator, config, level or prom-client module');
  t.same(natives.filter((n) => /level/i.test(n)), [], 'no LevelDB binding');

  // The same harness does see a node: the check can fail.
  const server = loaded(path.join(root, 'dist/src/server.js'));
  t.ok(server.exports.includes('startNode'), 'tunekv/server exports startNode');
  t.ok(server.urls.some((u) => /node_modules\/prom-client\//.test(u)), 'and loading it loads prom-client');
  t.ok(server.urls.some((u) => /node_modules\/(classic-level|level)\//.test(u)), 'and level');
  t.ok(server.natives.some((n) => /level/i.test(n)), `and the LevelDB binding (${server.natives.join(', ')})`);
});
