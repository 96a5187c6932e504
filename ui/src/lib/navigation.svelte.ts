/** Which view is shown, kept in the URL hash (`#/groups/my-group`). */
export const VIEWS = [
  { id: 'cluster', label: 'Cluster' },
  { id: 'timeline', label: 'Timeline' },
  { id: 'topics', label: 'Topics' },
  { id: 'messages', label: 'Messages' },
  { id: 'groups', label: 'Consumer groups' },
  { id: 'demo', label: 'Demo workload' },
] as const;

export type ViewId = (typeof VIEWS)[number]['id'];

function isView(value: string): value is ViewId {
  return VIEWS.some((view) => view.id === value);
}

function parseHash(hash: string): { view: ViewId; argument: string | null } {
  const [view = '', ...rest] = hash.replace(/^#\/?/, '').split('/');
  const argument = rest.length > 0 ? decodeURIComponent(rest.join('/')) : null;
  return isView(view) ? { view, argument } : { view: 'cluster', argument: null };
}

export function viewHref(view: ViewId, argument: string | null = null): string {
  return argument === null ? `#/${view}` : `#/${view}/${encodeURIComponent(argument)}`;
}

class Navigation {
  view = $state<ViewId>('cluster');
  /** A view's subject: the selected group or topic. */
  argument = $state<string | null>(null);

  constructor() {
    this.#read();
    window.addEventListener('hashchange', () => this.#read());
  }

  go(view: ViewId, argument: string | null = null): void {
    window.location.hash = viewHref(view, argument);
  }

  #read(): void {
    const { view, argument } = parseHash(window.location.hash);
    this.view = view;
    this.argument = argument;
  }
}

export const navigation = new Navigation();
