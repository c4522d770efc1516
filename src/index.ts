// tunekv's root entry (`import { connect } from 'tunekv'`): the client
// library alone, exactly what src/client/index.ts exports (`tunekv/client`
// is the same thing under its old name). Nothing of the node is reachable
// from here: no LevelDB binding, no metrics registry, no src/server code, so
// an application that only talks to a cluster pays for none of it
// (test/client/entry.test.ts checks the import graph and a real import).
// The node is `tunekv/server` (src/server.ts).

export * from './client/index.js';
