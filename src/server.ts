// tunekv's node entry (`import { startNode } from 'tunekv/server'`): start a
// node in this process, with its configuration and the limits it enforces.
// Kept apart from the root entry because it loads the LevelDB binding and
// the metrics registry, which a client never needs.

export { startNode } from './server/start-node.js';
export type { RunningNode } from './server/start-node.js';
export { defaultConfig, makeConfig } from './config.js';
export type { NodeConfig, NodeConfigInput } from './config.js';
export { limits } from './limits.js';
export { TuneKvError, errorCodes, isErrorCode } from './errors.js';
export type { ErrorCode, ErrorDetails } from './errors.js';
