// The README's five-minute tour, pasted line by line as a new user would,
// against a real local cluster: every command must exit as the README says
// and print on stdout what its `# →` comment says it prints.
//
// Annotation grammar (in the tour's sh blocks): a command line may end with
//   # → TEXT            stdout, its lines joined by " / ", is exactly TEXT
//   # → TEXT (exit N)   and the command exits N (otherwise it must exit 0)
//   # → (nothing) (exit N)   nothing at all on stdout
// A line without the comment must exit 0. `npx tunekv` runs the built CLI
// (npx only finds it; the test does not need npm's start-up).
import t from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { cliEntry } from '../../cluster/launcher.js';
import { testCluster } from '../helpers/cluster.js';

interface TourLine { readonly command: string; readonly stdout: string | undefined; readonly exit: number }

/** The sh blocks of the README's tour after the first (terminal 1's `make
 * cluster`, which the test replaces with its own cluster). */
export function tourLines(readme: string): TourLine[] {
  const start = readme.indexOf('## A five-minute tour');
  const end = readme.indexOf('\n## ', start + 1);
  const section = readme.slice(start, end);
  const blocks = [...section.matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => m[1]!);
  const lines: TourLine[] = [];
  for (const block of blocks.slice(1)) {
    for (const raw of block.split('\n')) {
      if (raw.trim().length === 0 || raw.trim().startsWith('#')) continue;
      const m = /^(.*?)\s+# → (.*?)(?: \(exit (\d+)\))?$/.exec(raw);
      if (m === null) { lines.push({ command: raw.trim(), stdout: undefined, exit: 0 }); continue; }
      lines.push({ command: m[1]!.trim(), stdout: m[2] === '(nothing)' ? '' : m[2], exit: m[3] === undefined ? 0 : Number(m[3]) });
    }
  }
  return lines;
}

t.test('the tour annotations parse', async (t) => {
  const lines = tourLines('## A five-minute tour\n```sh\nmake cluster\n```\n```sh\nnpx tunekv get a   # → hello\n'
    + 'npx tunekv get b   # → (nothing) (exit 1)\nCTX=$(x)\n```\n## Next\n');
  t.same(lines, [
    { command: 'npx tunekv get a', stdout: 'hello', exit: 0 },
    { command: 'npx tunekv get b', stdout: '', exit: 1 },
    { command: 'CTX=$(x)', stdout: undefined, exit: 0 },
  ]);
});

t.test('every tour command prints what the README says', async (t) => {
  const readme = fs.readFileSync(path.join(import.meta.dirname, '..', '..', 'README.md'), 'utf8');
  const lines = tourLines(readme);
  t.ok(lines.length >= 15, `the tour has its commands (${lines.length})`);
  t.ok(lines.filter((l) => l.stdout !== undefined).length >= 10, 'and most say what they print');
  const cluster = await testCluster(t, { localLayout: true });
  // One shell for the whole tour, so CTX=... carries over as it does for a
  // user; each line's stdout, stderr and exit code go to their own files.
  const out = fs.mkdtempSync(path.join(cluster.root, 'tour-'));
  const bin = path.join(out, 'bin');
  fs.mkdirSync(bin);
  fs.writeFileSync(path.join(bin, 'npx'), `#!/bin/sh\n[ "$1" = tunekv ] || exit 127\nshift\nexec "${process.execPath}" "${cliEntry}" "$@"\n`, { mode: 0o755 });
  const script = lines.map((l, i) => `{ ${l.command}\n} >${out}/${i}.out 2>${out}/${i}.err; echo $? >${out}/${i}.rc`).join('\n');
  const env: NodeJS.ProcessEnv = { ...process.env, PATH: `${bin}:${process.env.PATH ?? ''}` };
  delete env.TUNEKV_HOST;
  delete env.TUNEKV_CONFIG;
  const run = spawnSync('bash', ['-c', script], { cwd: cluster.root, env, encoding: 'utf8', timeout: 180_000 });
  t.equal(run.status, 0, run.stderr);
  for (const [i, l] of lines.entries()) {
    const stdout = fs.readFileSync(path.join(out, `${i}.out`), 'utf8');
    const stderr = fs.readFileSync(path.join(out, `${i}.err`), 'utf8');
    const rc = Number(fs.readFileSync(path.join(out, `${i}.rc`), 'utf8'));
    t.equal(rc, l.exit, `${l.command}: exit ${l.exit}\n${stderr}`);
    if (l.stdout !== undefined) {
      t.equal(stdout.replace(/\n$/, '').split('\n').join(' / '), l.stdout, `${l.command}: prints what the README says`);
    }
  }
});
