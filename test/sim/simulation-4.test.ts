// Seeds 751..1000 of the 1,000 make test runs (see simulation.test.ts).
import t from 'tap';
import { runSeeds } from './run-seeds.js';

t.test('250 seeded simulations from seed 751', (t) => runSeeds(t, 751, 250));
