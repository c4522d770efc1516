// The client library's own entry point (`tunekv/client`): the client, its
// types and the errors, and nothing of the node: no LevelDB binding, no
// metrics registry, no server code is loaded. An application that only
// talks to a cluster imports this; `tunekv` (src/index.ts) adds the node.

export { connect, TuneKvClient, encodeContext, decodeContext } from './client.js';
export { Session } from './session.js';
export type {
  ConnectOptions, GetOptions, PutOptions, DeleteOptions, GetResult, PutResult, ReplicaInfo, RequestOptions,
} from './client.js';
export { CounterHandle, SetHandle } from './types.js';
export type { CounterResult, SetMembersResult, SetUpdateResult, TypedReadOptions, TypedWriteOptions } from './types.js';
export { TuneKvError, errorCodes, isErrorCode } from '../errors.js';
export { readSecretFile } from '../security/secret.js';
export type { ErrorCode, ErrorDetails } from '../errors.js';
export type { Consistency } from '../core/quorum/levels.js';
export { deleted } from './update.js';
export type { Resolver, SiblingInfo, UpdateOptions, UpdateResult } from './update.js';
export type { ConflictsOptions, ConflictsPage, ConflictView, ConflictVersionView } from './conflicts.js';
export { limits } from '../limits.js';
export type { Limits } from '../limits.js';
export type {
  ClientEvents, DeleteResult, GetManyOptions, ManyResult, NodeCallOptions, PutEntry, PutManyOptions, RetryOptions,
} from './client.js';
export type { NodeStatus, PeerStatus, RingMemberStatus, RingStatus } from './status.js';
export { defaultClientPort } from './hosts.js';
