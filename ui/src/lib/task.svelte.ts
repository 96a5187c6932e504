/**
 * One user-visible operation: whether it is running (for spinners and
 * disabled buttons) and how it last failed (for an inline failure box).
 */
import { toFailure } from './api';
import type { Failure } from './bindings/Failure';

export class Task {
  busy = $state(false);
  failure = $state<Failure | null>(null);

  /** Runs `work`; on failure keeps the `Failure` and resolves to undefined. */
  async run<T>(work: () => Promise<T>): Promise<T | undefined> {
    this.busy = true;
    this.failure = null;
    try {
      return await work();
    } catch (error) {
      this.failure = toFailure(error);
      return undefined;
    } finally {
      this.busy = false;
    }
  }

  dismiss(): void {
    this.failure = null;
  }
}
