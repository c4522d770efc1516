// The replies of counter and set requests: what a coordinator tells the
// client after a TYPE_UPDATE or TYPE_READ, built from the object it holds
// (update) or merged from R replicas (read).

import type { VersionedObject } from '../core/clock/object.js';
import type { ReplicaReport } from '../core/coordinator/types.js';
import { counterOf, membersOf } from '../core/crdt/typed-object.js';
import type { TypedReplyBody } from '../protocol/messages.js';
import type { PutRequest } from './requests.js';
import { reportsToWire } from './replies.js';
import type { TypedGetRequest } from './typed-requests.js';

export function typedReadReply(req: TypedGetRequest, obj: VersionedObject | undefined, replicas: readonly ReplicaReport[], coordinator: string): TypedReplyBody {
  const common = { found: obj !== undefined, level: req.quorum.level, r: req.quorum.r, coordinator, replicas: reportsToWire(replicas) };
  return req.kind === 'counter' ? { ...common, value: counterOf(obj).toString() } : { ...common, members: membersOf(obj) };
}

/** An update answers with the value (counter) or member count (set) of the
 * coordinator's copy right after the operation: the operation's result, plus
 * whatever that copy had merged by then. */
export function typedUpdateReply(req: PutRequest, obj: VersionedObject, replicas: readonly ReplicaReport[], coordinator: string,
  held: boolean | undefined): TypedReplyBody {
  const common = { found: true, level: req.quorum.level, w: req.quorum.w, coordinator, replicas: reportsToWire(replicas) };
  if (req.typed?.kind === 'counter') return { ...common, value: counterOf(obj).toString() };
  return held === undefined ? { ...common, size: membersOf(obj).length } : { ...common, size: membersOf(obj).length, held };
}
