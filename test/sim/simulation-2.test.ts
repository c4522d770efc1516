// The second half of the 1,000 seeds make test runs (see simulation.test.ts).
import t from 'tap';
import { runSeeds } from './run-seeds.js';

t.test('500 seeded simulations from seed 501', (t) => runSeeds(t, 501, 500));
