/** Page-wide UI state: whether a modal dialog holds the focus. */
class UiState {
  #openModals = $state(0);

  get modalOpen(): boolean {
    return this.#openModals > 0;
  }

  openModal(): void {
    this.#openModals += 1;
  }

  closeModal(): void {
    this.#openModals = Math.max(0, this.#openModals - 1);
  }
}

export const ui = new UiState();
