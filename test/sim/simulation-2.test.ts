// Seeds 251..500 of the 1,000 make test runs (see simulation.test.ts).
import t from 'tap';
import { runSeeds } from './run-seeds.js';

t.test('250 seeded simulations from seed 251', (t) => runSeeds(t, 251, 250));
