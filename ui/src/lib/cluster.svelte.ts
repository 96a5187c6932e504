/**
 * The live picture of the cluster: the latest snapshot, the event timeline
 * and long operations in progress, all fed by the update stream. A
 * `snapshot` update replaces the snapshot; `events` are added to the
 * timeline once each (by sequence).
 */
import { callFor, subscribe, toFailure, type ConnectionState } from './api';
import type { ClusterEvent } from './bindings/ClusterEvent';
import type { ClusterSnapshot } from './bindings/ClusterSnapshot';
import type { Failure } from './bindings/Failure';
import type { Progress } from './bindings/Progress';
import type { SessionInfo } from './bindings/SessionInfo';
import type { Update } from './bindings/Update';

/** The timeline keeps this many events; older ones drop off. */
const MAX_EVENTS = 10_000;
/** A finished operation's bar stays this long so its end is seen. */
const FINISHED_PROGRESS_VISIBLE_MS = 3000;

class ClusterState {
  session = $state.raw<SessionInfo | null>(null);
  snapshot = $state.raw<ClusterSnapshot | null>(null);
  /** Newest first. */
  events = $state.raw<ClusterEvent[]>([]);
  connection = $state<ConnectionState>('connecting');
  /** Operations in progress, by name. */
  progress = $state.raw<Progress[]>([]);
  /** Why the first load failed, when it did. */
  loadFailure = $state<Failure | null>(null);

  #lastEventSequence = 0;
  #pushedSnapshots = 0;
  #stop: (() => void) | null = null;

  /** Whether node controls and writes are allowed in this session. */
  get canControlNodes(): boolean {
    return this.session?.kind === 'local' && !this.session.readOnly;
  }

  get canWrite(): boolean {
    return this.session !== null && !this.session.readOnly;
  }

  start(): void {
    if (this.#stop) return;
    this.#stop = subscribe({
      update: (update) => this.apply(update),
      state: (state) => {
        this.connection = state;
        // Catch up on whatever was missed while disconnected.
        if (state === 'connected') void this.refresh();
      },
    });
  }

  stop(): void {
    this.#stop?.();
    this.#stop = null;
  }

  async refresh(): Promise<void> {
    const pushesBefore = this.#pushedSnapshots;
    try {
      const [session, snapshot, events] = await Promise.all([
        callFor({ op: 'session' }, 'session'),
        callFor({ op: 'snapshot' }, 'snapshot'),
        callFor({ op: 'events', after: this.#lastEventSequence }, 'events'),
      ]);
      this.session = session;
      // A snapshot pushed meanwhile is newer than this answer.
      if (this.#pushedSnapshots === pushesBefore) this.#takeSnapshot(snapshot);
      this.#addEvents(events);
      this.loadFailure = null;
    } catch (error) {
      this.loadFailure = toFailure(error);
    }
  }

  apply(update: Update): void {
    switch (update.kind) {
      case 'snapshot':
        this.#pushedSnapshots += 1;
        this.#takeSnapshot(update.data);
        break;
      case 'events':
        this.#addEvents(update.data);
        break;
      case 'progress':
        this.#trackProgress(update.data);
        break;
    }
  }

  #takeSnapshot(snapshot: ClusterSnapshot): void {
    // Sequences only go back when the backend started a new session (it
    // restarted): its events are numbered afresh too.
    if (this.snapshot && snapshot.sequence < this.snapshot.sequence) {
      this.events = [];
      this.#lastEventSequence = 0;
    }
    this.snapshot = snapshot;
  }

  #addEvents(events: ClusterEvent[]): void {
    const fresh = events
      .filter((event) => event.sequence > this.#lastEventSequence)
      .sort((a, b) => b.sequence - a.sequence);
    if (fresh.length === 0) return;
    this.#lastEventSequence = fresh[0].sequence;
    this.events = [...fresh, ...this.events].slice(0, MAX_EVENTS);
  }

  #trackProgress(progress: Progress): void {
    this.progress = [...this.progress.filter((item) => item.operation !== progress.operation), progress];
    if (progress.finished) {
      setTimeout(() => {
        this.progress = this.progress.filter((item) => item !== progress);
      }, FINISHED_PROGRESS_VISIBLE_MS);
    }
  }
}

export const cluster = new ClusterState();
