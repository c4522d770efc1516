// Seeds 501..750 of the 1,000 make test runs (see simulation.test.ts).
import t from 'tap';
import { runSeeds } from './run-seeds.js';

t.test('250 seeded simulations from seed 501', (t) => runSeeds(t, 501, 250));
