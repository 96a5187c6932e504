/**
 * The one way the UI talks to Eddy's core. Inside the desktop app it uses
 * Tauri IPC (`call` and `subscribe` commands); in a browser it uses
 * `eddy serve`: `POST /api/call` and the `/api/updates` WebSocket, both
 * authorised by the per-run token from the page URL.
 */
import { Channel, invoke, isTauri } from '@tauri-apps/api/core';
import type { Failure } from './bindings/Failure';
import type { Request } from './bindings/Request';
import type { Response } from './bindings/Response';
import type { Update } from './bindings/Update';

export type ResponseKind = Response['kind'];
export type ResponseData<K extends ResponseKind> = Extract<Response, { kind: K }>['data'];
export type ConnectionState = 'connecting' | 'connected' | 'disconnected';

/** A rejected call: carries the backend's `Failure` for display. */
export class CallError extends Error {
  readonly failure: Failure;

  constructor(failure: Failure) {
    super(failure.message);
    this.name = 'CallError';
    this.failure = failure;
  }
}

const TOKEN_KEY = 'eddy.token';
const TOKEN_HEADER = 'X-Eddy-Token';
const RECONNECT_MIN_MS = 500;
const RECONNECT_MAX_MS = 10_000;

export const inDesktopApp: boolean = isTauri();

/**
 * Moves `?token=` from the address bar into sessionStorage, so the token
 * neither lingers in history nor leaks through copied links.
 */
function takeToken(): string | null {
  if (inDesktopApp || typeof window === 'undefined') return null;
  const url = new URL(window.location.href);
  const fromUrl = url.searchParams.get('token');
  if (fromUrl) {
    sessionStorage.setItem(TOKEN_KEY, fromUrl);
    url.searchParams.delete('token');
    window.history.replaceState(window.history.state, '', url.pathname + url.search + url.hash);
  }
  return sessionStorage.getItem(TOKEN_KEY);
}

const token: string | null = takeToken();

function failure(message: string, hint: string | null = null, kafkaError: string | null = null): Failure {
  return { kafkaError, message, hint };
}

function isFailure(value: unknown): value is Failure {
  return typeof value === 'object' && value !== null && typeof (value as Failure).message === 'string';
}

/** Turns anything thrown by a transport into a `Failure`. */
export function toFailure(error: unknown): Failure {
  if (error instanceof CallError) return error.failure;
  if (isFailure(error)) {
    return { kafkaError: error.kafkaError ?? null, message: error.message, hint: error.hint ?? null };
  }
  if (typeof error === 'string') return failure(error);
  if (error instanceof Error) return failure(error.message);
  return failure('Something went wrong', String(error));
}

async function callTauri(request: Request): Promise<Response> {
  try {
    return await invoke<Response>('call', { request });
  } catch (error) {
    throw new CallError(toFailure(error));
  }
}

async function callHttp(request: Request): Promise<Response> {
  let reply: globalThis.Response;
  try {
    reply = await fetch('/api/call', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', [TOKEN_HEADER]: token ?? '' },
      body: JSON.stringify(request),
    });
  } catch {
    throw new CallError(
      failure('Cannot reach eddy serve', 'Check that `eddy serve` is still running, then retry.'),
    );
  }
  if (reply.status === 401 || reply.status === 403) {
    throw new CallError(
      failure(
        reply.status === 401 ? 'The access token is missing or wrong' : 'The request was refused',
        'Open the exact URL that `eddy serve` printed (it carries ?token=...).',
      ),
    );
  }
  let body: { ok?: Response; error?: Failure };
  try {
    body = await reply.json();
  } catch {
    throw new CallError(failure(`Unexpected answer from eddy serve (HTTP ${reply.status})`));
  }
  if (body.error) throw new CallError(toFailure(body.error));
  if (!body.ok) throw new CallError(failure(`Unexpected answer from eddy serve (HTTP ${reply.status})`));
  return body.ok;
}

/** Sends one request; rejects with a `CallError` carrying the `Failure`. */
export function call(request: Request): Promise<Response> {
  return inDesktopApp ? callTauri(request) : callHttp(request);
}

/** Sends a request and insists on one kind of answer, returning its data. */
export async function callFor<K extends ResponseKind>(request: Request, kind: K): Promise<ResponseData<K>> {
  const response = await call(request);
  if (response.kind !== kind) {
    throw new CallError(failure(`Expected a "${kind}" answer to "${request.op}", got "${response.kind}"`));
  }
  return response.data as ResponseData<K>;
}

export interface UpdateHandlers {
  update: (update: Update) => void;
  state: (state: ConnectionState) => void;
}

function subscribeTauri(handlers: UpdateHandlers): () => void {
  const channel = new Channel<Update>();
  let closed = false;
  channel.onmessage = (update) => {
    if (!closed) handlers.update(update);
  };
  // The command may resolve at once or only when the stream ends; either
  // way the channel is live from here on, and only a rejection means it is not.
  invoke('subscribe', { channel }).catch(() => !closed && handlers.state('disconnected'));
  handlers.state('connected');
  return () => {
    closed = true;
  };
}

function updatesUrl(): string {
  const url = new URL('/api/updates', window.location.href);
  url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
  url.search = new URLSearchParams({ token: token ?? '' }).toString();
  url.hash = '';
  return url.toString();
}

function subscribeWebSocket(handlers: UpdateHandlers): () => void {
  let socket: WebSocket | null = null;
  let retryTimer: ReturnType<typeof setTimeout> | null = null;
  let delayMs = RECONNECT_MIN_MS;
  let closed = false;

  const connect = () => {
    handlers.state('connecting');
    const current = new WebSocket(updatesUrl());
    socket = current;
    current.onopen = () => {
      delayMs = RECONNECT_MIN_MS;
      handlers.state('connected');
    };
    current.onmessage = (message) => {
      if (typeof message.data !== 'string') return;
      try {
        handlers.update(JSON.parse(message.data) as Update);
      } catch {
        // A malformed message is dropped; the next snapshot supersedes it.
      }
    };
    current.onclose = () => {
      if (closed || socket !== current) return;
      handlers.state('disconnected');
      retryTimer = setTimeout(connect, delayMs);
      delayMs = Math.min(delayMs * 2, RECONNECT_MAX_MS);
    };
  };

  connect();
  return () => {
    closed = true;
    if (retryTimer) clearTimeout(retryTimer);
    socket?.close();
  };
}

/** Streams live updates until the returned function is called. */
export function subscribe(handlers: UpdateHandlers): () => void {
  return inDesktopApp ? subscribeTauri(handlers) : subscribeWebSocket(handlers);
}
