// Types of switchboard/client (switchboard-client.js beside this file).

/**
 * `json`: parse each message as JSON. `last`: on a server whose hub keeps history, the first
 * subscribe also gets the topic's last N kept messages (later ones resume from the last offset seen).
 */
export interface SubscribeOptions {
  json?: boolean;
  last?: number;
}

/** Topic names to the payload each carries: `string`, `Uint8Array`, or a JSON value (subscribe with `{ json: true }`). */
export type TopicMap = Record<string, unknown>;
/** Request topics to what is asked and what the server answers. */
export type RequestMap = Record<string, { request: unknown; reply: unknown }>;

/** The part of a WebSocket the client uses: the platform's (browsers, Node 22+) or the `ws` package's. */
export interface WebSocketLike {
  binaryType: string;
  readonly readyState: number;
  send(data: string | ArrayBufferLike | ArrayBufferView): void;
  close(code?: number, reason?: string): void;
  onopen: ((event: unknown) => void) | null;
  onmessage: ((event: { data: unknown }) => void) | null;
  onclose: ((event: { code: number; reason: string }) => void) | null;
  onerror: ((event: unknown) => void) | null;
}
export type WebSocketConstructor = new (url: string) => WebSocketLike;

export interface ClientOptions {
  /** The WebSocket to use; default globalThis.WebSocket (Node 20 has none: pass the `ws` package's). */
  WebSocket?: WebSocketConstructor | (new (url: string) => unknown);
  /** First reconnect delay in ms (default 500); it doubles per failed attempt up to maxDelay. */
  initialDelay?: number;
  /** Longest reconnect delay in ms (default 30000). */
  maxDelay?: number;
  /** Up to this fraction of each delay is taken off at random, so clients do not return in step (default 0.5). */
  jitter?: number;
  /** After this many ms without a word from the server, the client pings it (default 20000; 0: off). */
  pingInterval?: number;
  /** A ping unanswered for this many ms means the link is dead: the client drops it and reconnects (default 10000). */
  pingTimeout?: number;
  /** A connection not open within this many ms is given up and tried again (default 10000; 0: no limit). */
  connectTimeout?: number;
  /** Default time for an acknowledgement or a reply, from when the message goes out (default 10000; 0: none). */
  timeout?: number;
  /** Messages the offline queue holds (default 1000); one more fails with ERR_QUEUE_FULL. */
  maxQueue?: number;
  /** Size the offline queue holds, in UTF-16 units of text and bytes of binary (default 1 MiB). */
  maxQueueBytes?: number;
}

export declare const CLIENT_DEFAULTS: Readonly<Required<Omit<ClientOptions, 'WebSocket'>>>;

export type ClientErrorCode = 'ERR_NO_WEBSOCKET' | 'ERR_INVALID_OPTION' | 'ERR_INVALID_MESSAGE' | 'ERR_QUEUE_FULL' | 'ERR_TIMEOUT'
  | 'ERR_REFUSED' | 'ERR_DISCONNECTED' | 'ERR_CLOSED';

export declare class ClientError extends Error {
  readonly code: ClientErrorCode;
  /** The server's reason, for ERR_REFUSED (a refusal by its authorize hook, a limit, a handler's error). */
  readonly reason?: string;
  constructor(code: ClientErrorCode, message: string, reason?: string);
}

export interface ClientCloseInfo {
  code: number;
  reason: string;
  /** The connection had opened (false: an attempt that failed). */
  wasOpen: boolean;
  willReconnect: boolean;
}

export interface ClientEvents {
  /** Connected; `reconnected` after the first time (subscriptions are renewed before this, the offline queue goes after). */
  open: [info: { reconnected: boolean }];
  close: [info: ClientCloseInfo];
  reconnecting: [info: { attempt: number; delay: number; reason: string }];
  /** A plain message (not of the wire protocol). */
  message: [data: string | Uint8Array];
  error: [err: Error];
}

export interface Delivery<K extends string = string> {
  topic: K;
  /** The message's place in the topic's history, when the server keeps one (resubscription resumes after it). */
  offset?: string;
}

export declare function reconnectDelay(attempt: number, options?: Required<Omit<ClientOptions, 'WebSocket'>>): number;

export type ClientState = 'connecting' | 'open' | 'reconnecting' | 'closed';

export declare class SwitchboardClient<Topics extends TopicMap = TopicMap, Requests extends RequestMap = RequestMap> {
  constructor(url: string | URL, options?: ClientOptions);
  readonly url: string;
  readonly state: ClientState;
  /** Messages waiting in the offline queue. */
  readonly queued: number;
  on<E extends keyof ClientEvents>(event: E, listener: (...args: ClientEvents[E]) => void): () => void;
  off<E extends keyof ClientEvents>(event: E, listener: (...args: ClientEvents[E]) => void): void;
  /** A plain message, now or after the reconnect; throws ERR_QUEUE_FULL when the offline queue is full. */
  send(data: string | Uint8Array | ArrayBuffer): void;
  subscribe<K extends keyof Topics & string>(topic: K, handler?: (data: Topics[K], info: Delivery<K>) => void, options?: SubscribeOptions): Promise<void>;
  unsubscribe<K extends keyof Topics & string>(topic: K, handler?: (data: Topics[K], info: Delivery<K>) => void): Promise<void>;
  /** Resolves on the server's acknowledgement; a value that is neither text nor bytes goes as JSON text. */
  publish<K extends keyof Topics & string>(topic: K, data: Topics[K], options?: { timeout?: number }): Promise<void>;
  request<K extends keyof Requests & string>(topic: K, data: Requests[K]['request'], options?: { timeout?: number }): Promise<Requests[K]['reply']>;
  close(code?: number, reason?: string): void;
}

export declare function createClient<Topics extends TopicMap = TopicMap, Requests extends RequestMap = RequestMap>(
  url: string | URL, options?: ClientOptions): SwitchboardClient<Topics, Requests>;
