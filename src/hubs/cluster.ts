/**
 * The hub for worker processes on one machine, without Redis. Publishes go straight from worker
 * to worker over a mesh of local stream sockets (cluster-mesh.ts), each to the workers that
 * subscribe to the topic, once per receiving process. The primary is the mesh's registry and
 * stays on the node:cluster IPC channel for control only: it tells each new worker the secret
 * and the other workers' socket names, tracks which worker subscribes to which topic (for status
 * output), and answers ready()'s round trip. The primary side (startClusterRelay) is set up by
 * core/workers.ts, which also picks `serialization: 'advanced'` for IPC.
 *
 * Order: one mesh connection per pair of workers is a FIFO, so a publisher's messages on a topic
 * reach every other worker in publish order. At most once: a worker that is restarting, or that
 * lets more than `maxPendingBytes` (or `maxPending` messages) pile up unsent, misses messages
 * (counted in `dropped` and per peer in peers(), logged once per congestion spell).
 *
 * History: each worker keeps a bounded history (history.ts) of what it saw on the topics it
 * subscribes to, its own publishes and those sent to it, with offsets of its own (a worker's
 * offsets mean nothing to another worker: asking one for another's is reported as 'unknown-offset').
 */
import cluster from 'node:cluster';
import type { Worker } from 'node:cluster';
import type { Message } from '../codec/types.js';
import { SwitchboardError } from '../errors.js';
import { DEFAULT_MAX_PEER_BYTES, Mesh, meshSecret } from './cluster-mesh.js';
import type { PeerAddress, PeerStats } from './cluster-mesh.js';
import { ClusterPresence, PrimaryPresence, type PresenceToPrimary, type PresenceToWorker } from './cluster-presence.js';
import { LocalHistory, type HistoryOptions } from './history.js';
import type { HistoryQuery, HistoryResult, Hub, HubListener, HubLog } from './types.js';

export type { PeerStats } from './cluster-mesh.js';

/** Set in the environment of workers that runWorkers() forks; tells createHub() to default to 'cluster'. */
export const WORKER_ENV = 'SWITCHBOARD_WORKER';

/** IPC messages; the `sbhub` field tags ours among anything else the application sends. */
type ToPrimary =
  | { sbhub: 'sub'; topic: string }
  | { sbhub: 'unsub'; topic: string }
  | { sbhub: 'ping'; seq: number }
  | { sbhub: 'mesh'; path: string; index: number }
  | { sbhub: 'mesh-off' }
  | PresenceToPrimary;
type ToWorker = { sbhub: 'pong'; seq: number } | { sbhub: 'peers'; token: string; peers: PeerAddress[] } | PresenceToWorker;
/**
 * What crosses the channel: the messages of one event-loop round, in order, as one IPC message.
 * One IPC message costs far more than its contents (a syscall and a serialization pass each
 * side), so a chat round of a hundred publishes is one send, not a hundred.
 */
type Batch<T> = { sbhub: 'batch'; msgs: T[] };

/** Messages handed to one channel (IPC, or the mesh link to one worker) and not yet written; beyond this we drop rather than grow. */
const DEFAULT_MAX_PENDING = 50_000;

export interface ClusterHubOptions {
  log?: HubLog;
  /** Most messages waiting for one other worker (and on the IPC channel) before new ones are dropped. Default 50000. */
  maxPending?: number;
  /** Most bytes waiting for one other worker before publishes to it are dropped. Default 16 MiB. */
  maxPendingBytes?: number;
  /** The worker's bounded in-process history (default 100 messages per topic, 4 MiB in all); false: none. */
  history?: HistoryOptions | false;
}

export function inSwitchboardWorker(): boolean {
  return cluster.isWorker && process.env[WORKER_ENV] === '1' && typeof process.send === 'function';
}

export class ClusterHub implements Hub {
  readonly kind = 'cluster';
  /** Control messages dropped because the channel to the primary was gone or congested. */
  private ipcDropped = 0;
  private readonly mesh: Mesh;
  private meshError: Error | null = null;
  readonly keepsHistory: boolean;
  /** The kept messages; null without history. */
  readonly store: LocalHistory | null;
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

  /** While the channel to the primary is open and the mesh listens (for /healthz). */
  get up(): boolean {
    return !this.closed && process.connected && this.mesh.listening;
  }

  /** Deliveries to other workers dropped (a congested peer, no mesh yet) and control messages the primary missed. */
  get dropped(): number {
    return this.ipcDropped + this.mesh.dropped;
  }

  /** The other workers this one is linked to, with what went to each (for status output and tests). */
  peers(): PeerStats[] {
    return this.mesh.peers();
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
    this.store = options.history === false ? null : new LocalHistory(options.history);
    if (this.store?.maxMessages === 0) this.store = null;
    this.keepsHistory = this.store !== null;
    if (!cluster.isWorker || typeof process.send !== 'function') {
      throw new SwitchboardError(
        'ERR_HUB',
        "cluster hub: works only inside a worker process started by runWorkers() (--workers N); use 'memory' or a redis URL here",
      );
    }
    process.on('message', this.onIpc);
    const index = Number(process.env.SWITCHBOARD_WORKER_INDEX ?? '0');
    this.mesh = new Mesh(
      {
        log: this.log,
        maxPending: this.maxPending,
        maxPendingBytes: options.maxPendingBytes ?? DEFAULT_MAX_PEER_BYTES,
        self: { id: cluster.worker?.id ?? 0, index, pid: process.pid },
        wants: (topic) => this.listener !== null && this.topicSet.has(topic),
        deliver: (topic, data) => this.listener?.(topic, data, this.store?.append(topic, data)),
      },
      () => this.topicSet,
      (path) => this.send({ sbhub: 'mesh', path, index }),
      (err) => {
        this.meshError = err;
        this.log(`cluster hub: cannot listen for the other workers (${err.message}); messages to and from them are dropped`);
      },
    );
  }

  private receive(raw: unknown): void {
    if (this.closed || typeof raw !== 'object' || raw === null) return;
    const batch = raw as Partial<Batch<ToWorker>>;
    if (batch.sbhub === 'batch' && Array.isArray(batch.msgs)) {
      for (const m of batch.msgs) this.receive(m);
      return;
    }
    const msg = raw as Partial<ToWorker>;
    if (msg.sbhub === 'peers') {
      if (typeof msg.token === 'string' && Array.isArray(msg.peers)) this.mesh.join(msg.token, msg.peers);
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
      this.ipcDropped += msgs.length;
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
    this.mesh.subscribe(topic);
  }

  unsubscribe(topic: string): void {
    if (!this.topicSet.delete(topic)) return;
    this.send({ sbhub: 'unsub', topic });
    this.mesh.unsubscribe(topic);
  }

  publish(topic: string, data: Message, token?: unknown): void {
    if (this.closed) return;
    // With history, local delivery is ours (see types.ts): kept and delivered here, at once.
    if (this.store !== null) this.listener?.(topic, data, this.store.append(topic, data), token);
    this.mesh.publish(topic, data);
  }

  history(topic: string, query: HistoryQuery): Promise<HistoryResult> {
    if (this.store === null) return Promise.resolve({ entries: [], gap: 'no-history' });
    return Promise.resolve(this.store.query(topic, query));
  }

  /**
   * A round trip to the primary (IPC is FIFO: every subscribe sent before is in effect there), then
   * one to each linked worker once the primary's peer list has come (every SUB sent before is in
   * its view of our interest, so its publishes from then on come here). A worker that does not
   * answer in time is logged and left out: a hung peer must not keep this one from starting.
   */
  async ready(timeoutMs = 5000): Promise<void> {
    if (this.meshError !== null) throw new SwitchboardError('ERR_HUB', `cluster hub: no mesh between the workers (${this.meshError.message})`);
    const deadline = Date.now() + timeoutMs;
    await this.primaryReady(timeoutMs);
    await this.mesh.ready(Math.max(0, deadline - Date.now()));
    const failed = this.meshError as Error | null; // set by the listener's error while we waited
    if (failed !== null) throw new SwitchboardError('ERR_HUB', `cluster hub: no mesh between the workers (${failed.message})`);
  }

  private primaryReady(timeoutMs: number): Promise<void> {
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
    this.send({ sbhub: 'mesh-off' });
    this.flush();
    this.mesh.close();
    this.closed = true;
    this.presence.close();
    this.topicSet.clear();
    this.listener = null;
    this.pongs.clear();
    // Removing our listener lets the IPC channel stop holding the worker's event loop open.
    process.off('message', this.onIpc);
  }
}

export interface ClusterRelay {
  /** Topics and how many workers subscribe to each (for status output and tests). */
  topics(): Map<string, number>;
  /** Control messages dropped because a worker's channel was congested or gone (publishes do not pass here). */
  readonly dropped: number;
  /** Workers linked by the mesh: their ids, numbers, pids and socket names. */
  peers(): PeerAddress[];
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
 * The primary's half: the mesh's registry (each new worker gets the secret and the workers that
 * registered before it, and connects to them) and the record of which worker subscribes to which
 * topic. Publishes do not pass here. Call once, in the primary.
 */
export function startClusterRelay(options: ClusterHubOptions = {}): ClusterRelay {
  const log = options.log ?? ((m: string) => console.error(m));
  const maxPending = options.maxPending ?? DEFAULT_MAX_PENDING;
  const subscribers = new Map<string, Set<Worker>>();
  const states = new Map<Worker, WorkerState>();
  /** Workers whose hub listens for the mesh, in registration order. */
  const registry = new Map<Worker, PeerAddress>();
  const token = meshSecret();
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
    registry.delete(worker);
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
      case 'mesh': {
        if (typeof msg.path !== 'string') break;
        const peers = [...registry].filter(([w]) => w !== worker && w.isConnected()).map(([, p]) => p);
        registry.delete(worker); // a second hub in one worker replaces the first
        registry.set(worker, { id: worker.id, index: Number(msg.index) || 0, pid: worker.process.pid ?? 0, path: msg.path });
        sendTo(worker, { sbhub: 'peers', token, peers });
        break;
      }
      case 'mesh-off':
        registry.delete(worker);
        break;
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
    peers: () => [...registry.values()],
    get dropped() {
      return dropped;
    },
    stop: () => {
      cluster.off('message', onMessage);
      cluster.off('exit', forget);
      subscribers.clear();
      states.clear();
      registry.clear();
      presence.clear();
    },
  };
}
