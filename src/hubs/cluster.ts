/**
 * The hub for worker processes on one machine, without Redis: each worker sends its publishes to
 * the primary over the node:cluster IPC channel, and the primary relays them to every *other*
 * worker that subscribes to the topic. The primary side (startClusterRelay) is set up by
 * core/workers.ts, which also picks `serialization: 'advanced'` so that Buffers cross IPC as
 * Buffers and strings as strings (no base64, no JSON).
 *
 * Order: one IPC channel per worker is a FIFO and the primary relays in arrival order, so a
 * publisher's messages on a topic reach every other worker in publish order. At most once: a
 * worker that is restarting, or that lets more than `maxPending` relayed messages pile up
 * unsent, misses messages (counted in `dropped`, logged once per congestion spell).
 */
import cluster from 'node:cluster';
import type { Worker } from 'node:cluster';
import type { Message } from '../codec/types.js';
import { SwitchboardError } from '../errors.js';
import { ClusterPresence, PrimaryPresence, type PresenceToPrimary, type PresenceToWorker } from './cluster-presence.js';
import type { Hub, HubListener, HubLog } from './types.js';

/** Set in the environment of workers that runWorkers() forks; tells createHub() to default to 'cluster'. */
export const WORKER_ENV = 'SWITCHBOARD_WORKER';

/** IPC messages; the `sbhub` field tags ours among anything else the application sends. */
type ToPrimary =
  | { sbhub: 'sub'; topic: string }
  | { sbhub: 'unsub'; topic: string }
  | { sbhub: 'pub'; topic: string; data: Message }
  | { sbhub: 'ping'; seq: number }
  | PresenceToPrimary;
type ToWorker = { sbhub: 'msg'; topic: string; data: Message } | { sbhub: 'pong'; seq: number } | PresenceToWorker;
/**
 * What crosses the channel: the messages of one event-loop round, in order, as one IPC message.
 * One IPC message costs far more than its contents (a syscall and a serialization pass each
 * side), so a chat round of a hundred publishes is one send, not a hundred.
 */
type Batch<T> = { sbhub: 'batch'; msgs: T[] };

/** Messages handed to the IPC channel and not yet written; beyond this we drop rather than grow. */
const DEFAULT_MAX_PENDING = 50_000;

export interface ClusterHubOptions {
  log?: HubLog;
  /** Most publishes queued on the IPC channel before new ones are dropped. Default 50000. */
  maxPending?: number;
}

export function inSwitchboardWorker(): boolean {
  return cluster.isWorker && process.env[WORKER_ENV] === '1' && typeof process.send === 'function';
}

export class ClusterHub implements Hub {
  readonly kind = 'cluster';
  /** Publishes dropped because the channel to the primary was gone or congested. */
  dropped = 0;
  private readonly log: HubLog;
  private readonly maxPending: number;
  private readonly topicSet = new Set<string>();
  private listener: HubListener | null = null;
  /** Messages handed to the channel and not yet written (counted per message, sent per batch). */
  private pending = 0;
  /** The size of each batch in flight, oldest first (send callbacks come back in order). */
  private readonly sentSizes: number[] = [];
  /** This round's messages, not yet sent. */
  private outbox: ToPrimary[] = [];
  private congestedLogged = false;
  private seq = 0;
  private readonly pongs = new Map<number, () => void>();
  private closed = false;
  private readonly onIpc = (msg: unknown): void => this.receive(msg);
  /** Presence and claims, held by the primary for every worker (see cluster-presence.ts). */
  readonly presence = new ClusterPresence((msg) => this.send(msg));

  /** While the channel to the primary is open (for /healthz). */
  get up(): boolean {
    return !this.closed && process.connected;
  }
  // One callback for every send: counts what the channel still holds (no closure per message).
  private readonly onSent = (err: Error | null): void => {
    this.pending -= this.sentSizes.shift() ?? 0;
    if (err && !this.closed && !this.congestedLogged) {
      this.congestedLogged = true;
      this.log(`cluster hub: lost the channel to the primary (${err.message}); messages to other workers are dropped`);
    }
  };

  constructor(options: ClusterHubOptions = {}) {
    this.log = options.log ?? ((m) => console.error(m));
    this.maxPending = options.maxPending ?? DEFAULT_MAX_PENDING;
    if (!cluster.isWorker || typeof process.send !== 'function') {
      throw new SwitchboardError(
        'ERR_HUB',
        "cluster hub: works only inside a worker process started by runWorkers() (--workers N); use 'memory' or a redis URL here",
      );
    }
    process.on('message', this.onIpc);
  }

  private receive(raw: unknown): void {
    if (this.closed || typeof raw !== 'object' || raw === null) return;
    const batch = raw as Partial<Batch<ToWorker>>;
    if (batch.sbhub === 'batch' && Array.isArray(batch.msgs)) {
      for (const m of batch.msgs) this.receive(m);
      return;
    }
    const msg = raw as Partial<ToWorker>;
    if (msg.sbhub === 'msg') {
      const topic = msg.topic as string;
      if (this.listener !== null && this.topicSet.has(topic)) this.listener(topic, toMessage(msg.data));
    } else if (this.presence.receive(msg as Partial<PresenceToWorker>)) {
      // an answer to a listing or a claim
    } else if (msg.sbhub === 'pong') {
      const done = this.pongs.get(msg.seq as number);
      if (done) {
        this.pongs.delete(msg.seq as number);
        done();
      }
    }
  }

  private send(msg: ToPrimary): boolean {
    if (this.closed || !process.connected || process.send === undefined) return false;
    if (this.pending + this.outbox.length >= this.maxPending) {
      if (!this.congestedLogged) {
        this.congestedLogged = true;
        this.log(`cluster hub: ${this.pending} messages wait on the channel to the primary; dropping publishes until it drains`);
      }
      return false;
    }
    if (this.pending === 0) this.congestedLogged = false;
    if (this.outbox.push(msg) === 1) setImmediate(this.flush);
    return true;
  }

  /** Sends this round's messages as one IPC message (order kept: it is one FIFO channel). */
  private readonly flush = (): void => {
    const msgs = this.outbox;
    if (msgs.length === 0) return;
    this.outbox = [];
    if (!process.connected || process.send === undefined) {
      this.dropped += msgs.length;
      return;
    }
    this.pending += msgs.length;
    this.sentSizes.push(msgs.length);
    process.send({ sbhub: 'batch', msgs } satisfies Batch<ToPrimary>, undefined, undefined, this.onSent);
  };

  setListener(listener: HubListener): void {
    this.listener = listener;
  }

  topics(): string[] {
    return [...this.topicSet];
  }

  subscribe(topic: string): void {
    if (this.closed || this.topicSet.has(topic)) return;
    this.topicSet.add(topic);
    this.send({ sbhub: 'sub', topic });
  }

  unsubscribe(topic: string): void {
    if (!this.topicSet.delete(topic)) return;
    this.send({ sbhub: 'unsub', topic });
  }

  publish(topic: string, data: Message): void {
    if (!this.send({ sbhub: 'pub', topic, data })) this.dropped++;
  }

  /** A round trip to the primary: IPC is FIFO, so every subscribe sent before is in effect when it returns. */
  ready(timeoutMs = 5000): Promise<void> {
    if (this.closed) return Promise.reject(new SwitchboardError('ERR_CLOSED', 'cluster hub: closed'));
    const seq = ++this.seq;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pongs.delete(seq);
        reject(new SwitchboardError('ERR_HUB', `cluster hub: the primary did not answer within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pongs.set(seq, () => {
        clearTimeout(timer);
        resolve();
      });
      if (!this.send({ sbhub: 'ping', seq })) {
        clearTimeout(timer);
        this.pongs.delete(seq);
        reject(new SwitchboardError('ERR_HUB', 'cluster hub: no channel to the primary'));
      }
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    for (const topic of this.topicSet) this.send({ sbhub: 'unsub', topic });
    this.flush();
    this.closed = true;
    this.presence.close();
    this.topicSet.clear();
    this.listener = null;
    this.pongs.clear();
    // Removing our listener lets the IPC channel stop holding the worker's event loop open.
    process.off('message', this.onIpc);
  }
}

/** Structured clone gives Buffers back as Buffers; JSON IPC (someone else's fork) gives {type:'Buffer',data}. */
function toMessage(data: unknown): Message {
  if (typeof data === 'string' || Buffer.isBuffer(data)) return data;
  if (data instanceof Uint8Array) return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  const json = data as { type?: string; data?: number[] } | null;
  if (json !== null && typeof json === 'object' && json.type === 'Buffer' && Array.isArray(json.data)) return Buffer.from(json.data);
  return String(data);
}

export interface ClusterRelay {
  /** Topics and how many workers subscribe to each (for status output and tests). */
  topics(): Map<string, number>;
  /** Relayed messages dropped because a worker's channel was congested or gone. */
  readonly dropped: number;
  stop(): void;
}

interface WorkerState {
  topics: Set<string>;
  /** Relayed messages handed to this worker's channel and not yet written. */
  pending: number;
  /** The size of each batch in flight to it, oldest first. */
  sizes: number[];
  congestedLogged: boolean;
  onSent: (err: Error | null) => void;
}

/**
 * The primary's half: tracks which worker subscribes to which topic and relays each publish to
 * every other subscribing worker, never back to the publisher. Call once, in the primary.
 */
export function startClusterRelay(options: ClusterHubOptions = {}): ClusterRelay {
  const log = options.log ?? ((m: string) => console.error(m));
  const maxPending = options.maxPending ?? DEFAULT_MAX_PENDING;
  const subscribers = new Map<string, Set<Worker>>();
  const states = new Map<Worker, WorkerState>();
  let dropped = 0;
  const presence = new PrimaryPresence();
  const reply = (worker: Worker) => (m: ToWorker): void => sendTo(worker, m);

  const stateOf = (worker: Worker): WorkerState => {
    let st = states.get(worker);
    if (st === undefined) {
      const created: WorkerState = {
        topics: new Set(),
        pending: 0,
        sizes: [],
        congestedLogged: false,
        onSent: () => {
          created.pending -= created.sizes.shift() ?? 0;
        },
      };
      states.set(worker, created);
      st = created;
    }
    return st;
  };

  const forget = (worker: Worker): void => {
    presence.forget(worker);
    const st = states.get(worker);
    if (st === undefined) return;
    for (const topic of st.topics) removeSub(topic, worker);
    states.delete(worker);
  };

  const removeSub = (topic: string, worker: Worker): void => {
    const set = subscribers.get(topic);
    if (set === undefined) return;
    set.delete(worker);
    if (set.size === 0) subscribers.delete(topic);
  };

  /** Relays owed to each worker while one incoming batch is handled; sent as one batch each. */
  const outgoing = new Map<Worker, ToWorker[]>();

  const sendTo = (worker: Worker, msg: ToWorker): void => {
    const st = stateOf(worker);
    if (!worker.isConnected() || st.pending >= maxPending) {
      dropped++;
      if (!st.congestedLogged && worker.isConnected()) {
        st.congestedLogged = true;
        log(`cluster hub: worker ${worker.id} has ${st.pending} messages waiting; dropping messages to it until it catches up`);
      }
      return;
    }
    if (st.pending === 0) st.congestedLogged = false;
    st.pending++;
    let list = outgoing.get(worker);
    if (list === undefined) outgoing.set(worker, (list = []));
    list.push(msg);
  };

  const flushOutgoing = (): void => {
    for (const [worker, msgs] of outgoing) {
      const st = stateOf(worker);
      st.sizes.push(msgs.length);
      worker.send({ sbhub: 'batch', msgs } satisfies Batch<ToWorker>, undefined, st.onSent);
    }
    outgoing.clear();
  };

  const handle = (worker: Worker, msg: Partial<ToPrimary>): void => {
    switch (msg.sbhub) {
      case 'sub': {
        const topic = msg.topic as string;
        stateOf(worker).topics.add(topic);
        let set = subscribers.get(topic);
        if (set === undefined) subscribers.set(topic, (set = new Set()));
        set.add(worker);
        break;
      }
      case 'unsub': {
        const topic = msg.topic as string;
        stateOf(worker).topics.delete(topic);
        removeSub(topic, worker);
        break;
      }
      case 'pub': {
        const set = subscribers.get(msg.topic as string);
        if (set === undefined) break;
        // One object for every receiver; IPC serializes it per channel anyway.
        const out: ToWorker = { sbhub: 'msg', topic: msg.topic as string, data: msg.data as Message };
        for (const w of set) if (w !== worker) sendTo(w, out);
        break;
      }
      case 'ping':
        sendTo(worker, { sbhub: 'pong', seq: msg.seq as number });
        break;
      default:
        presence.handle(worker, msg as Partial<PresenceToPrimary>, reply(worker));
    }
  };

  const onMessage = (worker: Worker, raw: unknown): void => {
    if (typeof raw !== 'object' || raw === null) return;
    const batch = raw as Partial<Batch<ToPrimary>>;
    if (batch.sbhub === 'batch' && Array.isArray(batch.msgs)) for (const m of batch.msgs) handle(worker, m);
    else handle(worker, raw as Partial<ToPrimary>);
    flushOutgoing();
  };

  cluster.on('message', onMessage);
  cluster.on('exit', forget);
  return {
    topics: () => new Map([...subscribers].map(([t, s]) => [t, s.size])),
    get dropped() {
      return dropped;
    },
    stop: () => {
      cluster.off('message', onMessage);
      cluster.off('exit', forget);
      subscribers.clear();
      states.clear();
      presence.clear();
    },
  };
}
