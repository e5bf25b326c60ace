// switchboard/client: one dependency-free ES module for browsers and Node. It speaks the wire
// protocol of src/core/topics-wire.ts (text messages starting with U+001E, then one JSON object)
// beside plain messages, and keeps a connection alive for its user: reconnection with backoff and
// jitter, an application-level ping (browsers cannot send WebSocket pings and often do not notice
// a dead link), a bounded offline queue, and resubscription after a reconnect. Its types are in
// switchboard-client.d.ts; served by `serve chat` at /switchboard-client.js.

const RS = '\u001e';

export const CLIENT_DEFAULTS = Object.freeze({
  initialDelay: 500,
  maxDelay: 30000,
  jitter: 0.5,
  pingInterval: 20000,
  pingTimeout: 10000,
  connectTimeout: 10000,
  timeout: 10000,
  maxQueue: 1000,
  maxQueueBytes: 1024 * 1024,
});

export class ClientError extends Error {
  constructor(code, message, reason) {
    super(message);
    this.name = 'ClientError';
    this.code = code;
    if (reason !== undefined) this.reason = reason;
  }
}

/** The delay before reconnect attempt `attempt` (0-based): doubling from initialDelay up to maxDelay, less up to `jitter` of it at random. */
export function reconnectDelay(attempt, o = CLIENT_DEFAULTS) {
  const base = Math.min(o.maxDelay, o.initialDelay * 2 ** Math.min(attempt, 30));
  return Math.round(base * (1 - o.jitter * Math.random()));
}

function toBase64(bytes) {
  let s = '';
  for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
  return globalThis.btoa(s);
}
function fromBase64(text) {
  const s = globalThis.atob(text);
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}
function asBytes(data) {
  if (data instanceof Uint8Array) return data;
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  return null;
}

export class SwitchboardClient {
  constructor(url, options = {}) {
    const WS = options.WebSocket ?? globalThis.WebSocket;
    if (typeof WS !== 'function') {
      throw new ClientError('ERR_NO_WEBSOCKET', 'no WebSocket here: pass options.WebSocket (in Node 20, the ws package\'s WebSocket)');
    }
    this.url = String(url);
    this.options = { ...CLIENT_DEFAULTS, ...options };
    for (const key of Object.keys(CLIENT_DEFAULTS)) {
      const v = this.options[key];
      if (typeof v !== 'number' || !(v >= 0)) throw new ClientError('ERR_INVALID_OPTION', `option ${key} must be a number >= 0 (got ${String(v)})`);
    }
    this.WebSocket = WS;
    this.state = 'connecting';
    this.ws = null;
    this.attempt = 0;
    this.opened = false; // opened at least once: a later open is a reconnection
    this.listeners = new Map();
    this.queue = []; // what waits for the connection: { data, size, op }
    this.queuedBytes = 0;
    this.pending = new Map(); // id -> { resolve, reject, timer, timeout, kind }
    this.subs = new Map(); // topic -> { handlers: Set, json, offset }
    this.nextId = 1;
    this.retryTimer = null;
    this.connectTimer = null;
    this.pingTimer = null;
    this.deadTimer = null;
    this.lastHeard = 0;
    this.connect();
  }

  /** Listens to 'open', 'close', 'reconnecting', 'message', 'error'; returns a function that stops listening. */
  on(event, listener) {
    let set = this.listeners.get(event);
    if (set === undefined) this.listeners.set(event, (set = new Set()));
    set.add(listener);
    return () => this.off(event, listener);
  }

  off(event, listener) {
    this.listeners.get(event)?.delete(listener);
  }

  /** Messages waiting for the connection (the offline queue). */
  get queued() {
    return this.queue.length;
  }

  /** Sends a plain message (text or bytes), now or, while disconnected, after the reconnect. Throws when the offline queue is full. */
  send(data) {
    this.assertUsable();
    if (typeof data === 'string') {
      // The server would take it for a protocol message.
      if (data.charCodeAt(0) === 0x1e) throw new ClientError('ERR_INVALID_MESSAGE', 'a plain message cannot start with U+001E (the protocol\'s marker)');
      this.out(data, null);
      return;
    }
    const bytes = asBytes(data);
    if (bytes === null) throw new ClientError('ERR_INVALID_MESSAGE', 'send() takes a string or bytes');
    this.out(bytes, null);
  }

  /**
   * Subscribes to a topic; resolves when the server allowed it, rejects with its refusal. The
   * subscription is renewed after every reconnect (from the last offset seen, where deliveries
   * carry one).
   */
  subscribe(topic, handler, options = {}) {
    this.assertUsable();
    let sub = this.subs.get(topic);
    if (sub === undefined) {
      this.subs.set(topic, (sub = { handlers: new Set(), json: options.json === true, last: options.last, offset: undefined, waiters: [], ready: null }));
      sub.ready = new Promise((resolve, reject) => sub.waiters.push({ resolve, reject }));
      // While offline, the subscription goes out with the others when the connection opens.
      if (this.state === 'open') this.sendSub(topic, sub);
    }
    if (typeof handler === 'function') sub.handlers.add(handler);
    return sub.ready;
  }

  /** Stops one handler, or (without a handler, or after the last one) the whole subscription. */
  unsubscribe(topic, handler) {
    const sub = this.subs.get(topic);
    if (sub === undefined) return Promise.resolve();
    if (typeof handler === 'function') {
      sub.handlers.delete(handler);
      if (sub.handlers.size > 0) return Promise.resolve();
    }
    this.subs.delete(topic);
    if (this.state !== 'open') return Promise.resolve(); // nothing to undo on a server that has not got it
    return this.op({ t: 'unsub', topic }, 'unsub', this.options.timeout);
  }

  /** Publishes to a topic; resolves on the server's acknowledgement (the publisher itself does not receive it). */
  publish(topic, data, options = {}) {
    this.assertUsable();
    const body = { t: 'pub', topic };
    const bytes = typeof data === 'string' ? null : asBytes(data);
    if (typeof data === 'string') body.data = data;
    else if (bytes !== null) body.bin = toBase64(bytes);
    else body.data = JSON.stringify(data);
    return this.op(body, 'pub', options.timeout ?? this.options.timeout);
  }

  /** Asks the server (a handler for `topic`) and resolves with its reply; rejects on refusal, error or timeout. */
  request(topic, data, options = {}) {
    this.assertUsable();
    const body = { t: 'req', topic };
    if (data !== undefined) body.data = data;
    return this.op(body, 'req', options.timeout ?? this.options.timeout);
  }

  /** Closes for good: no reconnect; what waits is rejected. */
  close(code = 1000, reason = '') {
    if (this.state === 'closed') return;
    const wasOpen = this.state === 'open';
    this.state = 'closed';
    this.stopTimers();
    clearTimeout(this.retryTimer);
    const err = new ClientError('ERR_CLOSED', 'the client was closed');
    this.failAll(err);
    for (const item of this.queue.splice(0)) item.op?.reject(err);
    for (const sub of this.subs.values()) for (const w of sub.waiters.splice(0)) w.reject(err);
    this.queuedBytes = 0;
    const ws = this.ws;
    this.ws = null;
    if (ws !== null) {
      this.detach(ws);
      try { ws.close(code, reason); } catch { ws.close(); }
    }
    this.emit('close', { code, reason, wasOpen, willReconnect: false });
  }

  // ---- internals ----

  assertUsable() {
    if (this.state === 'closed') throw new ClientError('ERR_CLOSED', 'the client was closed');
  }

  emit(event, ...args) {
    const set = this.listeners.get(event);
    if (set === undefined || set.size === 0) return false;
    for (const fn of [...set]) {
      try {
        fn(...args);
      } catch (err) {
        // A listener's error must not break the connection's bookkeeping; it is reported, once.
        if (event !== 'error') this.emit('error', err);
        else setTimeout(() => { throw err; });
      }
    }
    return true;
  }

  /** A protocol operation with an id: its promise settles on the server's answer or the timeout (which runs from when it goes out). */
  op(body, kind, timeout) {
    return new Promise((resolve, reject) => {
      const id = this.nextId++;
      body.id = id;
      const entry = { id, kind, resolve, reject, timer: null, timeout };
      this.out(RS + JSON.stringify(body), entry);
    });
  }

  /** Writes now when open, else queues (bounded); an op starts its clock when written. */
  out(data, op) {
    if (this.state === 'open' && this.ws !== null) {
      this.write(data, op);
      return;
    }
    const size = typeof data === 'string' ? data.length : data.byteLength;
    if (this.queue.length >= this.options.maxQueue || this.queuedBytes + size > this.options.maxQueueBytes) {
      const err = new ClientError('ERR_QUEUE_FULL', `offline queue full (${this.queue.length} messages, ${this.queuedBytes} bytes; limits ${this.options.maxQueue}, ${this.options.maxQueueBytes})`);
      if (op !== null) {
        op.reject(err);
        return;
      }
      throw err;
    }
    this.queue.push({ data, size, op });
    this.queuedBytes += size;
  }

  write(data, op) {
    if (op !== null) {
      this.pending.set(op.id, op);
      if (op.timeout > 0) {
        op.timer = setTimeout(() => {
          if (this.pending.get(op.id) !== op) return;
          this.pending.delete(op.id);
          op.reject(new ClientError('ERR_TIMEOUT', `no answer from the server within ${op.timeout} ms`));
        }, op.timeout);
      }
    }
    this.ws.send(data);
  }

  connect() {
    let ws;
    try {
      ws = new this.WebSocket(this.url);
    } catch (err) {
      this.scheduleReconnect(`cannot connect: ${err?.message ?? err}`);
      return;
    }
    this.ws = ws;
    ws.binaryType = 'arraybuffer';
    ws.onopen = () => this.handleOpen(ws);
    ws.onmessage = (e) => this.handleMessage(ws, e.data);
    ws.onclose = (e) => this.handleClose(ws, e.code, e.reason || (e.code === 1006 ? 'connection lost' : ''));
    ws.onerror = () => {}; // the close that follows says what happened
    if (this.options.connectTimeout > 0) {
      this.connectTimer = setTimeout(() => this.drop(ws, 4408, `no connection within ${this.options.connectTimeout} ms`), this.options.connectTimeout);
    }
  }

  handleOpen(ws) {
    if (ws !== this.ws) return;
    clearTimeout(this.connectTimer);
    const reconnected = this.opened;
    this.opened = true;
    this.state = 'open';
    this.attempt = 0;
    this.lastHeard = Date.now();
    this.startPing(ws);
    // Subscriptions first, then what the 'open' listeners send (a nickname), then the offline queue.
    for (const [topic, sub] of this.subs) this.sendSub(topic, sub);
    this.emit('open', { reconnected });
    if (ws !== this.ws || this.state !== 'open') return;
    const items = this.queue.splice(0);
    this.queuedBytes = 0;
    for (const item of items) this.write(item.data, item.op);
  }

  /** A subscribe (first or renewed, `since` the last offset seen); its answer settles those waiting on subscribe(). */
  sendSub(topic, sub) {
    const body = { t: 'sub', topic, id: this.nextId++ };
    if (sub.offset !== undefined) body.since = sub.offset;
    else if (typeof sub.last === 'number' && sub.last > 0) body.last = sub.last; // nothing seen yet: the topic's last messages
    const settle = (fn, arg) => {
      for (const w of sub.waiters.splice(0)) w[fn](arg);
    };
    const entry = { id: body.id, kind: 'sub', timer: null, timeout: this.options.timeout, resolve: () => settle('resolve'), reject: (err) => {
      // A lost connection renews it at the next open; a refusal or a timeout is the answer.
      if (err.code === 'ERR_DISCONNECTED') return;
      if (err.code === 'ERR_REFUSED' && this.subs.get(topic) === sub) this.subs.delete(topic);
      if (sub.waiters.length > 0) settle('reject', err);
      else this.emit('error', new ClientError(err.code, `resubscribing to ${topic}: ${err.message}`, err.reason));
    } };
    this.write(RS + JSON.stringify(body), entry);
  }

  handleMessage(ws, data) {
    if (ws !== this.ws) return;
    this.lastHeard = Date.now();
    if (typeof data !== 'string') {
      this.emit('message', new Uint8Array(data));
      return;
    }
    if (data.charCodeAt(0) !== 0x1e) {
      this.emit('message', data);
      return;
    }
    let m;
    try {
      m = JSON.parse(data.slice(1));
    } catch {
      m = null;
    }
    if (m === null || typeof m !== 'object' || typeof m.t !== 'string') {
      this.emit('message', data); // not the protocol after all: the server's plain text
      return;
    }
    switch (m.t) {
      case 'msg': return this.deliver(m);
      case 'pong': return;
      case 'ok':
      case 'res':
      case 'err': {
        const op = m.id === undefined ? undefined : this.pending.get(m.id);
        if (op === undefined) {
          if (m.t === 'err') this.emit('error', new ClientError('ERR_REFUSED', `server: ${m.reason}`, m.reason));
          return;
        }
        this.pending.delete(m.id);
        clearTimeout(op.timer);
        if (m.t === 'err') op.reject(new ClientError('ERR_REFUSED', `${m.op ?? op.kind} ${m.topic ?? ''} refused: ${m.reason}`.replace('  ', ' '), m.reason));
        else op.resolve(m.t === 'res' ? m.data : undefined);
        return;
      }
      default:
        this.emit('message', data);
    }
  }

  deliver(m) {
    const sub = this.subs.get(m.topic);
    if (sub === undefined) return;
    if (typeof m.offset === 'string') sub.offset = m.offset;
    let value = typeof m.bin === 'string' ? fromBase64(m.bin) : m.data;
    if (sub.json && typeof value === 'string') {
      try {
        value = JSON.parse(value);
      } catch {
        this.emit('error', new ClientError('ERR_INVALID_MESSAGE', `a message on ${m.topic} is not JSON`));
        return;
      }
    }
    const info = { topic: m.topic, offset: m.offset };
    for (const fn of [...sub.handlers]) {
      try {
        fn(value, info);
      } catch (err) {
        this.emit('error', err);
      }
    }
  }

  handleClose(ws, code, reason) {
    if (ws !== this.ws) return;
    this.lost(code, reason);
  }

  /** Gives up on a socket without waiting for it to close (a dead link's close may never come). */
  drop(ws, code, reason) {
    if (ws !== this.ws) return;
    this.detach(ws);
    try { ws.close(4000, reason.slice(0, 100)); } catch { /* already closing */ }
    this.lost(code, reason);
  }

  detach(ws) {
    ws.onopen = ws.onmessage = ws.onclose = null;
    ws.onerror = () => {};
  }

  lost(code, reason) {
    const wasOpen = this.state === 'open';
    this.ws = null;
    this.stopTimers();
    // Sent and not answered: whether the server acted on them is unknown, so they are not sent again.
    this.failAll(new ClientError('ERR_DISCONNECTED', `connection lost before the server answered (${code}${reason ? ' ' + reason : ''})`));
    this.emit('close', { code, reason, wasOpen, willReconnect: this.state !== 'closed' });
    if (this.state !== 'closed') this.scheduleReconnect(reason || `closed (${code})`);
  }

  scheduleReconnect(reason) {
    if (this.state === 'closed') return;
    this.state = 'reconnecting';
    const delay = reconnectDelay(this.attempt, this.options);
    this.attempt++;
    this.emit('reconnecting', { attempt: this.attempt, delay, reason });
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => {
      if (this.state !== 'reconnecting') return;
      this.connect();
    }, delay);
  }

  failAll(err) {
    const ops = [...this.pending.values()];
    this.pending.clear();
    for (const op of ops) {
      clearTimeout(op.timer);
      op.reject(err);
    }
  }

  /** Liveness: after pingInterval without a word from the server, a ping; no word within pingTimeout and the link is dead. */
  startPing(ws) {
    const { pingInterval, pingTimeout } = this.options;
    if (pingInterval === 0) return;
    const tick = () => {
      if (ws !== this.ws) return;
      const quiet = Date.now() - this.lastHeard;
      if (quiet < pingInterval) {
        this.pingTimer = setTimeout(tick, pingInterval - quiet);
        return;
      }
      const sentAt = Date.now();
      try { ws.send(RS + '{"t":"ping"}'); } catch { /* the close will come */ }
      this.deadTimer = setTimeout(() => {
        if (ws !== this.ws) return;
        if (this.lastHeard >= sentAt) return tick();
        this.drop(ws, 4408, `no answer to a ping within ${pingTimeout} ms`);
      }, pingTimeout);
    };
    this.pingTimer = setTimeout(tick, pingInterval);
  }

  stopTimers() {
    clearTimeout(this.connectTimer);
    clearTimeout(this.pingTimer);
    clearTimeout(this.deadTimer);
  }
}

/** `new SwitchboardClient(url, options)`. */
export function createClient(url, options) {
  return new SwitchboardClient(url, options);
}
