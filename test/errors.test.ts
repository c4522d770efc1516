// The README's error and limit tables are part of the product: they must
// list exactly the codes and limits the code has.
import t from 'tap';
import fs from 'node:fs';
import { errorCodes, TuneKvError, errorFromWire } from '../src/errors.js';
import { limits } from '../src/limits.js';

const readme = fs.readFileSync(new URL('../README.md', import.meta.url), 'utf8');

function section(title: string): string {
  const start = readme.indexOf(`## ${title}\n`);
  if (start < 0) return '';
  const end = readme.indexOf('\n## ', start + 1);
  return readme.slice(start, end < 0 ? undefined : end);
}

t.test('the README error table lists exactly the codes in src/errors.ts', async (t) => {
  const documented = [...section('Errors').matchAll(/^\| `([A-Z_]+)` \|/gm)].map((m) => m[1]).sort();
  t.same(documented, Object.keys(errorCodes).sort());
});

t.test('every limit is named in the README limits table', async (t) => {
  const table = section('Limits');
  for (const name of Object.keys(limits)) t.match(table, `\`${name}\``, `${name} is documented`);
});

t.test('every metric a node registers is in the README metrics table', async (t) => {
  const { NodeMetrics } = await import('../src/server/metrics.js');
  const zero = () => 0;
  const m = new NodeMetrics('n1', {
    readRepairs: zero, aaeKeysRepaired: zero, hintsPending: zero, hintsDelivered: zero, hintsDropped: zero,
    peerStates: () => ({ up: 0, suspect: 0, down: 0 }), requestsInFlight: zero,
    storageHealthy: zero, storageWriteFailures: zero, connections: () => ({ peer: 0, client: 0, handshaking: 0 }), quarantinedObjects: zero,
  });
  const table = section('Metrics');
  const names = (await m.registry.getMetricsAsJSON()).map((x) => x.name);
  t.ok(names.length >= 14, `${names.length} metrics registered`);
  for (const name of names) t.match(table, `\`${name}`, `${name} is documented`);
});

t.test('errors from the wire keep their code; unknown codes become INTERNAL', async (t) => {
  const e = errorFromWire({ code: 'TIMEOUT', message: 'slow', details: { required: 2 } });
  t.ok(e instanceof TuneKvError);
  t.equal(e.code, 'TIMEOUT');
  t.equal(e.details.required, 2);
  t.equal(errorFromWire({ code: 'FROM_THE_FUTURE', message: 'x' }).code, 'INTERNAL');
  t.equal(errorFromWire(null).code, 'INTERNAL');
  t.same(JSON.parse(JSON.stringify(e)), { code: 'TIMEOUT', message: 'slow', details: { required: 2 } });
});
