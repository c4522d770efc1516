// Packaging (issue 11): a fresh copy of the repository with no dist/ packs
// into a tarball that holds the build (the `prepare` script), LICENSE and no
// source map without its source; a scratch project that installs that
// tarball imports the client (`tunekv`) without loading LevelDB, and the
// node from `tunekv/server`.
//
// The copy sits in this repository's .tap/ (ignored by git), so the build
// finds the repository's installed TypeScript and @types/node in an
// enclosing node_modules, as it would after `npm ci` in a clone: an npm ci
// of its own would double the cost of the test (about a minute more on a
// loaded 2-core machine) to check the registry, not the package. The
// scratch project is outside and installs the tarball's dependencies
// itself (--prefer-offline, from the npm cache).
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
/** Not part of a fresh clone: installed or built, or local state. */
const notInClone = new Set(['node_modules', 'dist', '.git', '.tap', 'data', 'bench/results']);

// npm run by `npx tap` exports npm_config_* and npm_package_* for its own
// run; a nested npm must not inherit them (they would point it at this repo).
const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.toLowerCase().startsWith('npm_')));

function run(cmd: string, args: string[], cwd: string): string {
  const r = spawnSync(cmd, args, { cwd, env, encoding: 'utf8', timeout: 180_000 });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.status}: ${r.stderr.slice(-2000)}`);
  return r.stdout;
}

t.test('a fresh clone packs dist and LICENSE, and a scratch project imports the client without LevelDB', async (t) => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tunekv-pack-'));
  t.teardown(() => fs.rmSync(tmp, { recursive: true, force: true }));
  fs.mkdirSync(path.join(root, '.tap'), { recursive: true });
  const clone = fs.mkdtempSync(path.join(root, '.tap', 'pack-'));
  t.teardown(() => fs.rmSync(clone, { recursive: true, force: true }));
  // Entry by entry: the copy is inside the repository, which cpSync will
  // not copy whole into itself.
  const filter = (src: string): boolean => {
    const rel = path.relative(root, src).split(path.sep).join('/');
    return !notInClone.has(rel) && !rel.endsWith('.log') && !rel.endsWith('.tgz');
  };
  for (const entry of fs.readdirSync(root)) {
    if (filter(path.join(root, entry))) fs.cpSync(path.join(root, entry), path.join(clone, entry), { recursive: true, filter });
  }
  t.notOk(fs.existsSync(path.join(clone, 'dist')), 'the copy has no dist');
  t.notOk(fs.existsSync(path.join(clone, 'node_modules')), 'nor node_modules');

  const packed = JSON.parse(run('npm', ['pack', '--json'], clone)) as { filename: string; files: { path: string }[] }[];
  const files = packed[0]!.files.map((f) => f.path);
  for (const f of ['LICENSE', 'README.md', 'package.json', 'dist/src/index.js', 'dist/src/index.d.ts', 'dist/src/server.js', 'dist/src/client/index.js', 'dist/src/cli/main.js']) {
    t.ok(files.includes(f), `the tarball has ${f}`);
  }
  const maps = files.filter((f) => f.endsWith('.map'));
  const orphanMaps = maps.filter((m) => {
    const sources = (JSON.parse(fs.readFileSync(path.join(clone, m), 'utf8')) as { sources: string[] }).sources;
    return sources.some((s) => !files.includes(path.posix.join(path.posix.dirname(m), s)));
  });
  t.same(orphanMaps, [], 'no source map without its sources');
  t.match(fs.readFileSync(path.join(clone, 'LICENSE'), 'utf8'), /MIT License[\s\S]*Copyright \(c\) 2026 the tunekv authors/);

  const scratch = path.join(tmp, 'scratch');
  fs.mkdirSync(scratch);
  fs.writeFileSync(path.join(scratch, 'package.json'), JSON.stringify({ name: 'scratch', version: '1.0.0', private: true, type: 'module' }));
  run('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', path.join(clone, packed[0]!.filename)], scratch);
  const client = JSON.parse(run(process.execPath, ['-e', `import('tunekv').then((m) => console.log(JSON.stringify({
    connect: typeof m.connect, startNode: typeof m.startNode,
    natives: process.report.getReport().sharedObjects.filter((s) => s.endsWith('.node')),
  })))`], scratch)) as { connect: string; startNode: string; natives: string[] };
  t.equal(client.connect, 'function', 'import("tunekv") gives connect');
  t.equal(client.startNode, 'undefined', 'and no node');
  t.same(client.natives.filter((n) => /level/i.test(n)), [], 'without loading the LevelDB binding');
  const server = run(process.execPath, ['-e', `import('tunekv/server').then((m) => console.log(typeof m.startNode))`], scratch);
  t.equal(server.trim(), 'function', 'import("tunekv/server") gives startNode');
});
