/** Toasts: failures stay until dismissed, confirmations fade on their own. */
import type { Failure } from './bindings/Failure';

export interface Toast {
  id: number;
  tone: 'error' | 'success';
  title: string;
  failure: Failure | null;
}

const SUCCESS_VISIBLE_MS = 3000;
const MAX_TOASTS = 6;

class Notifications {
  items = $state<Toast[]>([]);
  #next = 1;

  failure(title: string, failure: Failure): void {
    this.#push({ id: this.#next++, tone: 'error', title, failure });
  }

  success(title: string): void {
    const id = this.#next++;
    this.#push({ id, tone: 'success', title, failure: null });
    setTimeout(() => this.dismiss(id), SUCCESS_VISIBLE_MS);
  }

  dismiss(id: number): void {
    this.items = this.items.filter((toast) => toast.id !== id);
  }

  #push(toast: Toast): void {
    this.items = [...this.items, toast].slice(-MAX_TOASTS);
  }
}

export const notifications = new Notifications();
