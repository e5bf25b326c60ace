/**
 * Topics from the wire: a small message protocol beside the plain messages of a listener, so that
 * a client (switchboard/client, or anything that writes JSON) can subscribe, unsubscribe, publish
 * and make requests with acknowledgements, while the server decides through `authorize`.
 *
 * A protocol message is a text message whose first character is U+001E (RS, the JSON text
 * sequence marker of RFC 7464) followed by one JSON object; on text:// that is one line. People do
 * not type RS and the chat strips control characters, so plain text never starts with it; a text
 * message that does start with it is taken as a protocol message (and answered with an error when
 * it is not one), never delivered to the application as plain text. Binary messages are always plain.
 *
 *   client → server                                   server → client
 *   {"t":"sub","topic":T,"id"?:I,"since"?:O,"last"?:N}          {"t":"ok","id":I}
 *   {"t":"unsub","topic":T,"id"?:I}                   {"t":"err","id"?:I,"op":OP,"topic"?:T,"reason":R}
 *   {"t":"pub","topic":T,"data"|"bin":P,"id"?:I}      {"t":"res","id":I,"data":J}
 *   {"t":"req","topic":T,"data"?:J,"id":I}            {"t":"msg","topic":T,"data"|"bin":P,"offset"?:O}
 *   {"t":"ping","id"?:I}                              {"t":"pong","id"?:I}
 */
import type { Message } from '../codec/types.js';
import type { Connection } from './connection.js';
import { SwitchboardError } from '../errors.js';

/** The first character of every protocol message (RFC 7464's record separator). */
export const WIRE_MARK = '\u001e';

/** What a client asks to do with a topic (unsubscribing is always allowed: it only takes away). */
export type WireAction = 'subscribe' | 'publish' | 'request';

/**
 * The server's decision: true allows, false refuses ("not allowed"), a string refuses with that
 * reason (sent to the client). May be async; a hook that throws or rejects refuses.
 */
export type WireAuthorize = (conn: Connection, action: WireAction, topic: string) => boolean | string | Promise<boolean | string>;

/** Answers a request: its result (any JSON value) is the reply; a throw is an error reply with its message. */
/** The most kept messages a wire subscribe may ask for with `last`. */
const MAX_LAST = 10_000;

export type WireRequestHandler = (conn: Connection, data: unknown, topic: string) => unknown;

export interface WireOptions {
  /** Decides every subscribe, publish and request (default: everything allowed). */
  authorize?: WireAuthorize;
  /** Topics one connection may subscribe to through the wire (default 100). */
  maxTopics?: number;
  /** Operations of one connection waiting for `authorize` or for a request's answer (default 64). */
  maxPending?: number;
  /** Longest topic name, in UTF-16 units (default 256). */
  maxTopicLength?: number;
  /** Longest id or offset, in UTF-16 units (ids may also be numbers) (default 64). */
  maxIdLength?: number;
  /** A request not answered within this many ms gets an error reply "timed out" (default 10000). */
  requestTimeout?: number;
}

/** The server side of the wire protocol a Server needs: publishing to a topic. */
export interface WireServer {
  publish(topic: string, data: Message, options?: { except?: Connection<never> }): number;
}

export const WIRE_DEFAULTS = { maxTopics: 100, maxPending: 64, maxTopicLength: 256, maxIdLength: 64, requestTimeout: 10_000 } as const;

type Id = string | number;
interface Op { t: string; id: Id | undefined; topic: string; raw: Record<string, unknown> }
/** Per connection that used the protocol: what waits, in order (authorize may be async). */
interface WireState { pending: number; queue: Op[]; busy: boolean }

const states = new WeakMap<Connection, WireState>();
const OPS = new Set(['sub', 'unsub', 'pub', 'req', 'ping']);

export class TopicsWire {
  private readonly authorizeHook: WireAuthorize | null;
  private readonly limits: Required<Omit<WireOptions, 'authorize'>>;
  private readonly handlers = new Map<string, WireRequestHandler>();

  constructor(private readonly server: WireServer, options: WireOptions = {}) {
    this.authorizeHook = options.authorize ?? null;
    this.limits = { ...WIRE_DEFAULTS };
    for (const key of Object.keys(WIRE_DEFAULTS) as (keyof typeof WIRE_DEFAULTS)[]) {
      const v = options[key];
      if (v === undefined) continue;
      if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) throw new SwitchboardError('ERR_INVALID_OPTION', `option wire.${key} must be a number >= 0 (got ${String(v)})`);
      this.limits[key] = v;
    }
  }

  /** Answers requests to `topic` (after `authorize` allowed them); one handler per topic. */
  handle(topic: string, handler: WireRequestHandler): this {
    this.handlers.set(topic, handler);
    return this;
  }

  /**
   * Subscribes `conn` to `topic` from server code with deliveries in the protocol's envelope
   * (`{"t":"msg",...}`), as a wire subscribe would (no authorize, no limit).
   */
  subscribe(conn: Connection<object>, topic: string, since?: string, last?: number): void {
    const c = conn as unknown as Connection;
    // With a hub that keeps history, `since` replays what the client missed, in the envelope;
    // `last` (without since: a first subscribe) the topic's last messages.
    c.subscribe(topic, since !== undefined ? { since } : last !== undefined && last > 0 ? { last } : undefined);
    if (c.topics.has(topic)) (c.framed ??= new Set()).add(topic);
  }

  /** @internal One protocol message from `conn` (its text starts with WIRE_MARK). */
  receive(conn: Connection, text: string): void {
    let raw: unknown;
    try {
      raw = JSON.parse(text.slice(1));
    } catch {
      raw = undefined;
    }
    if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) return this.refuse(conn, undefined, '?', undefined, 'malformed message: not a JSON object');
    const m = raw as Record<string, unknown>;
    const t = typeof m.t === 'string' && OPS.has(m.t) ? m.t : '?';
    const { id } = m;
    const goodId = id === undefined || (typeof id === 'number' && Number.isFinite(id)) || (typeof id === 'string' && id.length <= this.limits.maxIdLength);
    if (!goodId) return this.refuse(conn, undefined, t, undefined, `malformed message: id must be a number or a string of at most ${this.limits.maxIdLength}`);
    const op: Op = { t, id: id as Id | undefined, topic: '', raw: m };
    if (t === '?') return this.refuse(conn, op.id, t, undefined, `unknown message type ${JSON.stringify(String(m.t)).slice(0, 40)}`);
    if (t === 'ping') {
      send(conn, id === undefined ? { t: 'pong' } : { t: 'pong', id });
      return;
    }
    if (typeof m.topic !== 'string' || m.topic.length === 0) return this.refuse(conn, op.id, t, undefined, 'malformed message: topic must be a non-empty string');
    if (m.topic.length > this.limits.maxTopicLength) return this.refuse(conn, op.id, t, undefined, `topic too long (at most ${this.limits.maxTopicLength})`);
    op.topic = m.topic;
    if (t === 'req' && id === undefined) return this.refuse(conn, undefined, t, op.topic, 'malformed message: a request needs an id');
    if (t === 'sub' && m.since !== undefined && (typeof m.since !== 'string' || m.since.length > this.limits.maxIdLength)) {
      return this.refuse(conn, op.id, t, op.topic, `malformed message: since must be a string of at most ${this.limits.maxIdLength}`);
    }
    if (t === 'sub' && m.last !== undefined && (typeof m.last !== 'number' || !Number.isInteger(m.last) || m.last < 0 || m.last > MAX_LAST)) {
      return this.refuse(conn, op.id, t, op.topic, `malformed message: last must be an integer from 0 to ${MAX_LAST}`);
    }
    if (t === 'pub' && typeof m.data !== 'string' && typeof m.bin !== 'string') return this.refuse(conn, op.id, t, op.topic, 'malformed message: a publish needs data (text) or bin (base64)');
    let state = states.get(conn);
    if (state === undefined) states.set(conn, (state = { pending: 0, queue: [], busy: false }));
    if (state.pending >= this.limits.maxPending) return this.refuse(conn, op.id, t, op.topic, `too many pending operations (at most ${this.limits.maxPending})`);
    state.pending++;
    state.queue.push(op);
    if (!state.busy) this.drain(conn, state);
  }

  /**
   * The envelope a framed subscriber gets for one delivery, made once per publish and encoded
   * once per wire format. `offset` is the delivery's place in the topic's history, when it has one.
   */
  envelope(topic: string, data: Message, offset: string | undefined): string {
    const body: Record<string, unknown> = { t: 'msg', topic };
    if (typeof data === 'string') body.data = data;
    else body.bin = data.toString('base64');
    if (offset !== undefined) body.offset = offset;
    return WIRE_MARK + JSON.stringify(body);
  }

  /** Operations run in arrival order through authorize, which may be async. */
  private drain(conn: Connection, state: WireState): void {
    state.busy = true;
    while (state.queue.length > 0) {
      const op = state.queue[0]!;
      if (!conn.isOpen) {
        state.queue.length = 0;
        state.pending = 0;
        break;
      }
      const verdict = op.t === 'unsub' ? true : this.decide(conn, op);
      if (verdict instanceof Promise) {
        verdict.then((v) => this.settle(conn, state, v), () => this.settle(conn, state, 'authorization failed'));
        return;
      }
      state.queue.shift();
      this.apply(conn, state, op, verdict);
    }
    state.busy = false;
  }

  private settle(conn: Connection, state: WireState, verdict: boolean | string): void {
    const op = state.queue.shift();
    if (op !== undefined && conn.isOpen) this.apply(conn, state, op, verdict);
    this.drain(conn, state);
  }

  private decide(conn: Connection, op: Op): boolean | string | Promise<boolean | string> {
    if (this.authorizeHook === null) return true;
    const action: WireAction = op.t === 'sub' ? 'subscribe' : op.t === 'pub' ? 'publish' : 'request';
    try {
      return this.authorizeHook(conn, action, op.topic);
    } catch {
      return 'authorization failed';
    }
  }

  private apply(conn: Connection, state: WireState, op: Op, verdict: boolean | string): void {
    if (verdict !== true) {
      state.pending--;
      this.refuse(conn, op.id, op.t, op.topic, typeof verdict === 'string' && verdict !== '' ? verdict : 'not allowed');
      return;
    }
    if (op.t === 'req') return this.request(conn, state, op);
    state.pending--;
    if (op.t === 'sub') {
      const framed = conn.framed;
      if (!(framed?.has(op.topic) ?? false) && (framed?.size ?? 0) >= this.limits.maxTopics) {
        return this.refuse(conn, op.id, op.t, op.topic, `too many topics (at most ${this.limits.maxTopics})`);
      }
      this.subscribe(conn, op.topic, op.raw.since as string | undefined, op.raw.last as number | undefined);
    } else if (op.t === 'unsub') {
      conn.unsubscribe(op.topic);
    } else {
      const payload: Message = typeof op.raw.data === 'string' ? op.raw.data : Buffer.from(op.raw.bin as string, 'base64');
      this.server.publish(op.topic, payload, { except: conn as Connection<never> });
    }
    if (op.id !== undefined) send(conn, { t: 'ok', id: op.id });
  }

  private request(conn: Connection, state: WireState, op: Op): void {
    const handler = this.handlers.get(op.topic);
    let done = false;
    const finish = (reply: Record<string, unknown>): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      state.pending--;
      if (conn.isOpen) send(conn, reply);
    };
    const failed = (err: unknown): void => finish({ t: 'err', id: op.id, op: 'req', topic: op.topic, reason: err instanceof Error ? err.message : String(err) });
    const timer = setTimeout(() => finish({ t: 'err', id: op.id, op: 'req', topic: op.topic, reason: 'timed out' }), this.limits.requestTimeout);
    timer.unref();
    if (handler === undefined) return failed(`no handler for ${op.topic}`);
    try {
      Promise.resolve(handler(conn, op.raw.data ?? null, op.topic)).then((data) => finish({ t: 'res', id: op.id, data: data ?? null }), failed);
    } catch (err) {
      failed(err);
    }
  }

  private refuse(conn: Connection, id: Id | undefined, op: string, topic: string | undefined, reason: string): void {
    const body: Record<string, unknown> = { t: 'err' };
    if (id !== undefined) body.id = id;
    body.op = op;
    if (topic !== undefined) body.topic = topic;
    body.reason = reason;
    send(conn, body);
  }
}

function send(conn: Connection, body: Record<string, unknown>): void {
  let text: string;
  try {
    text = JSON.stringify(body);
  } catch {
    // A reply a handler made that JSON cannot hold (a cycle, a BigInt).
    text = JSON.stringify({ t: 'err', id: body.id, op: 'req', reason: 'reply is not JSON' });
  }
  conn.send(WIRE_MARK + text);
}
