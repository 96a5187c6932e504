/** Fault injection and membership: what the supervisor does to one node. */
export type NodeOperation = 'slow' | 'isolate' | 'heal' | 'remove';

/** Why a second removal is refused: the console removes one node at a time. */
export function removalRunningMessage(removing: number): string {
  return `node ${removing} is being removed; wait for it to finish`;
}

/**
 * Disables every node's Remove button under `root` while a removal runs (a
 * node card disables only its own buttons, while its node is busy). Once
 * none runs, each is enabled again unless `isBusy` says its node is busy.
 */
export function holdRemoveButtons(root: ParentNode, removing: number | null, isBusy: (nodeId: number) => boolean) {
  for (const button of root.querySelectorAll<HTMLButtonElement>('[data-node-id] button[data-action="remove"]')) {
    const nodeId = Number(button.closest<HTMLElement>('[data-node-id]')?.dataset.nodeId);
    button.disabled = removing !== null || isBusy(nodeId);
  }
}
