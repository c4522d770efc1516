// `tunekv/client` loads no node code: walks the value imports (not `import
// type`) from src/client/index.ts and fails on any server module, the
// LevelDB binding or the metrics registry. A client process should not
// pay for (or be able to reach) what only a node needs.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
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

t.test('the client entry point reaches no node code', async (t) => {
  const { files, packages } = walk(path.join(root, 'src/client/index.ts'));
  const rel = [...files].map((f) => path.relative(root, f));
  t.ok(rel.includes('src/client/client.ts'), 'the walk follows imports');
  t.ok(rel.includes('src/io/connection.ts'), 'and their imports');
  t.same(rel.filter((f) => f.startsWith('src/server/') || f.startsWith('src/cli/') || f.startsWith('src/sim/')), [], 'no server, CLI or simulator module');
  t.same([...packages].filter((p) => !p.startsWith('node:') && p !== 'msgpackr'), [], 'no package but msgpackr (no level, no prom-client)');
});

t.test('the walk does see a node import (the check can fail)', async (t) => {
  const { packages } = walk(path.join(root, 'src/index.ts'));
  t.ok([...packages].some((p) => p === 'level' || p === 'prom-client'), 'src/index.ts reaches level or prom-client');
});
