// tunekv's public surface: the client, a node starter, types and errors.

export { connect, TuneKvClient, encodeContext, decodeContext } from './client/client.js';
export { Session } from './client/session.js';
export type {
  ConnectOptions, GetOptions, PutOptions, DeleteOptions, GetResult, PutResult, ReplicaInfo, RequestOptions,
} from './client/client.js';
export { CounterHandle, SetHandle } from './client/types.js';
export type { CounterResult, SetMembersResult, SetUpdateResult, TypedReadOptions, TypedWriteOptions } from './client/types.js';
export { TuneKvError, errorCodes, isErrorCode } from './errors.js';
export type { ErrorCode, ErrorDetails } from './errors.js';
export { limits } from './limits.js';
export { defaultConfig, makeConfig } from './config.js';
export type { NodeConfig, NodeConfigInput } from './config.js';
export { startNode } from './server/start-node.js';
export type { RunningNode } from './server/start-node.js';
export type { Consistency } from './core/quorum/levels.js';
export { deleted } from './client/update.js';
export type { Resolver, SiblingInfo, UpdateOptions, UpdateResult } from './client/update.js';
export type { ConflictsOptions, ConflictsPage, ConflictView, ConflictVersionView } from './client/conflicts.js';
