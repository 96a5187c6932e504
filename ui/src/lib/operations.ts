/** Fault injection and membership: what the supervisor does to one node. */
export type NodeOperation = 'slow' | 'isolate' | 'heal' | 'remove';
