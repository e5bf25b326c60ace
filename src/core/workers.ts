/**
 * N worker processes sharing the listening ports (node:cluster), with the cluster hub's relay in
 * the primary so that rooms span the workers without Redis.
 *
 *   const workers = await runWorkers(4, async () => {
 *     const server = new Server({ listen, hub: createHub() });   // createHub() is 'cluster' in a worker
 *     await server.listen();
 *     return () => server.close();                              // how this worker stops gracefully
 *   }, { log });
 *
 * The same call runs in every process: in the primary it forks the workers and resolves once all
 * of them are listening; in a worker it calls startWorker() and resolves once that did. The
 * primary restarts a worker that dies (backoff 100 ms doubling to 10 s, reset after 30 s of
 * life), and on SIGINT/SIGTERM asks every worker to stop (they run their stop function, then
 * exit), kills those still alive after `stopTimeout`, and a second signal kills at once.
 * SIGHUP (or handle.restart()) is a rolling restart: one worker at a time, a new one is started
 * and waited for until it listens, then the old one is asked to stop with `drain` (its clients
 * get WebSocket 1012 "service restart", spread over that time); the port is never closed and the
 * other workers' clients are not touched.
 */
import cluster from 'node:cluster';
import type { Worker } from 'node:cluster';
import { SwitchboardError } from '../errors.js';
import { startClusterRelay, WORKER_ENV } from '../hubs/cluster.js';
import type { ClusterRelay } from '../hubs/cluster.js';
import type { HubLog } from '../hubs/types.js';
import { askWorkers } from './admin.js';
import type { Snapshot } from './metrics.js';

/** How a worker is asked to stop: over `drain` ms (0: at once), and whether it is being replaced. */
export interface StopHow {
  drain: number;
  restart: boolean;
}
export type StopWorker = (how: StopHow) => Promise<void> | void;
export type StartWorker = () => Promise<void | StopWorker>;

export interface RunWorkersOptions {
  /** Where worker starts, crashes and stops are reported. Default: console.error. */
  log?: HubLog;
  /** How long a worker gets to stop gracefully before it is killed, in ms. Default 10000. */
  stopTimeout?: number;
  /** First restart delay after a crash, in ms; doubles per consecutive crash. Default 100. */
  restartDelay?: number;
  /** Longest restart delay, in ms. Default 10000. */
  maxRestartDelay?: number;
  /** Stop on SIGINT/SIGTERM (the primary forwards them to workers), rolling restart on SIGHUP. Default true. */
  handleSignals?: boolean;
  /** Workers spread their clients' closes over this many ms when stopped or replaced (default 0: at once). */
  drain?: number;
}

export interface WorkersHandle {
  readonly role: 'primary' | 'worker';
  /** 0 in the primary; 1..N in a worker (a restarted worker keeps its number). */
  readonly index: number;
  /** Primary: stop every worker gracefully. Worker: stop this worker (it then exits). */
  stop(): Promise<void>;
  /** Primary: settles when every worker has exited after a stop. */
  readonly stopped: Promise<void>;
  /** Primary: pids of the live workers, by index order. Worker: its own pid. */
  pids(): number[];
  /** Primary only: the cluster hub's relay (topics, drops). */
  readonly relay: ClusterRelay | null;
  /** Primary: replaces the workers one at a time (what SIGHUP does); resolves when done. */
  restart(): Promise<void>;
  /** Primary: true once stop() was called (or a signal asked for it). */
  readonly stopping: boolean;
  /** Primary: every worker's figures (see admin.ts); a worker that does not answer is 'starting'. */
  snapshots(): Promise<Snapshot[]>;
}

const INDEX_ENV = 'SWITCHBOARD_WORKER_INDEX';
/** Control messages between primary and workers; `sbworker` tags them. */
type Control = { sbworker: 'ready' } | { sbworker: 'failed'; message: string } | { sbworker: 'stop'; drain?: number; restart?: boolean };

export async function runWorkers(n: number, startWorker: StartWorker, options: RunWorkersOptions = {}): Promise<WorkersHandle> {
  if (!Number.isInteger(n) || n < 1) {
    throw new SwitchboardError('ERR_INVALID_OPTION', `workers must be a whole number >= 1, got ${n}`);
  }
  return cluster.isPrimary ? runPrimary(n, options) : runWorker(startWorker, options);
}

interface Slot {
  index: number;
  worker: Worker | null;
  startedAt: number;
  crashes: number;
  ready: boolean;
  restartTimer: NodeJS.Timeout | null;
}

function runPrimary(n: number, options: RunWorkersOptions): Promise<WorkersHandle> {
  const log = options.log ?? ((m: string) => console.error(m));
  const stopTimeout = options.stopTimeout ?? 10_000;
  const restartDelay = options.restartDelay ?? 100;
  const maxRestartDelay = options.maxRestartDelay ?? 10_000;
  const handleSignals = options.handleSignals ?? true;
  const drain = options.drain ?? 0;

  // Structured-clone IPC: Buffers arrive as Buffers, strings as strings (the cluster hub relies on it).
  cluster.setupPrimary({ serialization: 'advanced' });
  const relay = startClusterRelay({ log });
  const slots: Slot[] = Array.from({ length: n }, (_, i) => ({
    index: i + 1,
    worker: null,
    startedAt: 0,
    crashes: 0,
    ready: false,
    restartTimer: null,
  }));
  const slotOf = new Map<Worker, Slot>();
  /** Workers outside the slots: a replacement not yet listening, and an old one draining. */
  const extras = new Set<Worker>();
  let restarting: Promise<void> | null = null;
  let started = false;
  let stopping: Promise<void> | null = null;
  let resolveStopped!: () => void;
  const stopped = new Promise<void>((r) => (resolveStopped = r));
  let startResolve!: (h: WorkersHandle) => void;
  let startReject!: (e: Error) => void;
  const startup = new Promise<WorkersHandle>((res, rej) => {
    startResolve = res;
    startReject = rej;
  });
  const killTimers = new Set<NodeJS.Timeout>();

  const fork = (slot: Slot): void => {
    slot.restartTimer = null;
    slot.ready = false;
    slot.startedAt = Date.now();
    const worker = spawn(slot.index);
    slot.worker = worker;
    slotOf.set(worker, slot);
  };

  const spawn = (index: number): Worker => cluster.fork({ [WORKER_ENV]: '1', [INDEX_ENV]: String(index) });
  const live = (): Worker[] => [...slots.flatMap((s) => (s.worker !== null ? [s.worker] : [])), ...extras];

  const onMessage = (worker: Worker, raw: unknown): void => {
    const slot = slotOf.get(worker);
    if (slot === undefined || typeof raw !== 'object' || raw === null) return;
    const msg = raw as Partial<Control>;
    if (msg.sbworker === 'ready') {
      slot.ready = true;
      if (!started && slots.every((s) => s.ready)) {
        started = true;
        log(`workers: ${n} worker(s) running (pids ${handle.pids().join(', ')})`);
        startResolve(handle);
      }
    } else if (msg.sbworker === 'failed' && !started && stopping === null) {
      // A worker that cannot start (port taken, bad option) will not do better on a restart.
      startReject(new SwitchboardError('ERR_WORKER_START', `worker ${slot.index} failed to start: ${String(msg.message)}`));
      void stop();
    }
  };

  const onExit = (worker: Worker, code: number | null, signal: string | null): void => {
    if (extras.delete(worker)) {
      if (stopping !== null && live().length === 0) finish();
      return;
    }
    const slot = slotOf.get(worker);
    if (slot === undefined) return;
    slotOf.delete(worker);
    slot.worker = null;
    if (stopping !== null) {
      if (live().length === 0) finish();
      return;
    }
    const how = signal ? `signal ${signal}` : `code ${code}`;
    if (!started) {
      startReject(new SwitchboardError('ERR_WORKER_START', `worker ${slot.index} exited with ${how} before it was listening`));
      void stop();
      return;
    }
    if (Date.now() - slot.startedAt > 30_000) slot.crashes = 0;
    const delay = Math.min(restartDelay * 2 ** slot.crashes, maxRestartDelay);
    slot.crashes++;
    log(`workers: worker ${slot.index} (pid ${worker.process.pid}) exited with ${how}; restarting in ${delay} ms`);
    slot.restartTimer = setTimeout(() => fork(slot), delay);
  };

  const finish = (): void => {
    for (const t of killTimers) clearTimeout(t);
    killTimers.clear();
    cluster.off('message', onMessage);
    cluster.off('exit', onExit);
    relay.stop();
    if (handleSignals) {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      process.off('SIGHUP', onHangup);
    }
    resolveStopped();
  };

  const stop = (): Promise<void> => {
    if (stopping !== null) return stopping;
    stopping = stopped;
    for (const s of slots) {
      if (s.restartTimer !== null) clearTimeout(s.restartTimer);
      s.restartTimer = null;
    }
    const workers = live();
    if (workers.length === 0) {
      finish();
      return stopping;
    }
    for (const w of workers) {
      // A worker on its way out (one that failed to start) may close the channel under this send:
      // with a callback the EPIPE comes here instead of as an 'error' that would crash the primary.
      askToStop(w, false);
    }
    return stopping;
  };

  /** Sends the stop request and arms the kill timer (drain + stopTimeout). */
  const askToStop = (w: Worker, restart: boolean): void => {
    // A worker on its way out (one that failed to start) may close the channel under this send:
    // with a callback the EPIPE comes here instead of as an 'error' that would crash the primary.
    if (w.isConnected()) w.send({ sbworker: 'stop', drain, restart } satisfies Control, undefined, () => {});
    const t = setTimeout(() => {
      log(`workers: worker ${slotOf.get(w)?.index ?? '?'} (pid ${w.process.pid}) did not stop within ${drain + stopTimeout} ms; killing it`);
      w.process.kill('SIGKILL');
    }, drain + stopTimeout);
    killTimers.add(t);
    w.once('exit', () => {
      clearTimeout(t);
      killTimers.delete(t);
    });
  };

  /** Resolves 'ready' when the worker listens, or 'gone' if it exits or fails first. */
  const whenReady = (w: Worker): Promise<'ready' | 'gone'> => new Promise((resolve) => {
    const onMsg = (raw: unknown): void => {
      const m = raw as Partial<Control> | null;
      if (typeof m !== 'object' || m === null) return;
      if (m.sbworker === 'ready') done('ready');
      else if (m.sbworker === 'failed') done('gone');
    };
    const onGone = (): void => done('gone');
    const done = (r: 'ready' | 'gone'): void => {
      w.off('message', onMsg);
      w.off('exit', onGone);
      resolve(r);
    };
    w.on('message', onMsg);
    w.once('exit', onGone);
  });

  const replace = async (slot: Slot): Promise<boolean> => {
    const old = slot.worker;
    const next = spawn(slot.index);
    extras.add(next);
    if ((await whenReady(next)) !== 'ready' || stopping !== null) {
      if (stopping === null) log(`workers: the new worker ${slot.index} did not start; keeping pid ${old?.process.pid ?? '-'} and stopping the restart`);
      if (next.isConnected()) askToStop(next, false);
      return false;
    }
    extras.delete(next);
    if (old !== null) {
      slotOf.delete(old);
      extras.add(old);
    }
    slot.worker = next;
    slot.ready = true;
    slot.startedAt = Date.now();
    slotOf.set(next, slot);
    if (old === null) return true;
    log(`workers: worker ${slot.index} replaced (pid ${old.process.pid} -> ${next.process.pid}); draining the old one over ${drain} ms`);
    const exited = new Promise<void>((resolve) => old.once('exit', () => resolve()));
    askToStop(old, true);
    await exited;
    return true;
  };

  const restart = (): Promise<void> => {
    if (restarting !== null) return restarting;
    if (stopping !== null || !started) return Promise.resolve();
    restarting = (async () => {
      log(`workers: rolling restart of ${slots.length} worker(s)`);
      for (const slot of slots) {
        if (stopping !== null) break;
        if (!(await replace(slot))) break;
      }
      if (stopping === null) log(`workers: rolling restart done (pids ${handle.pids().join(', ')})`);
    })().finally(() => { restarting = null; });
    return restarting;
  };
  const onHangup = (): void => {
    if (restarting !== null) log('workers: SIGHUP: a restart is already running');
    void restart();
  };

  let signals = 0;
  const onSignal = (sig: NodeJS.Signals): void => {
    signals++;
    if (signals === 1) {
      log(`workers: ${sig}: stopping ${live().length} worker(s) (again to kill them at once)`);
      void stop();
    } else {
      for (const w of live()) w.process.kill('SIGKILL');
    }
  };

  const handle: WorkersHandle = {
    role: 'primary',
    index: 0,
    stop,
    stopped,
    pids: () => live().flatMap((w) => (w.process.pid !== undefined ? [w.process.pid] : [])),
    relay,
    restart,
    get stopping() {
      return stopping !== null;
    },
    snapshots: () => askWorkers(slots.flatMap((s) => (s.worker !== null ? [{ worker: s.worker, index: s.index }] : []))),
  };

  cluster.on('message', onMessage);
  cluster.on('exit', onExit);
  if (handleSignals) {
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    process.on('SIGHUP', onHangup);
  }
  for (const slot of slots) fork(slot);
  return startup;
}

async function runWorker(startWorker: StartWorker, options: RunWorkersOptions): Promise<WorkersHandle> {
  const log = options.log ?? ((m: string) => console.error(m));
  const index = Number(process.env[INDEX_ENV] ?? '0');
  const send = (msg: Control, then?: () => void): void => {
    if (process.connected && process.send !== undefined) process.send(msg, undefined, undefined, () => then?.());
    else then?.();
  };

  // Stop requests are honoured from the start: one that comes while startWorker() runs waits for it.
  const starting = Promise.resolve().then(startWorker);
  let startFailed = false;
  let stopping: Promise<void> | null = null;
  const stop = (how: StopHow = { drain: options.drain ?? 0, restart: false }): Promise<void> => {
    if (stopping === null) {
      stopping = (async () => {
        try {
          const stopFn = await starting;
          if (typeof stopFn === 'function') await stopFn(how);
        } catch (err) {
          if (startFailed) process.exit(1); // said once already, as "failed to start"
          log(`workers: worker ${index} stopped with an error: ${err instanceof Error ? err.message : String(err)}`);
          process.exitCode = 1;
        }
        process.exit();
      })();
    }
    return stopping;
  };
  process.on('message', (raw: unknown) => {
    const msg = raw as Partial<Control & { sbworker: 'stop' }> | null;
    if (typeof msg === 'object' && msg !== null && msg.sbworker === 'stop') {
      void stop({ drain: typeof msg.drain === 'number' && msg.drain >= 0 ? msg.drain : 0, restart: msg.restart === true });
    }
  });
  if (options.handleSignals ?? true) {
    // Ctrl-C reaches the whole process group: the worker stops itself the same way the primary would ask.
    process.on('SIGINT', () => void stop());
    process.on('SIGTERM', () => void stop());
    // SIGHUP is for the primary (a rolling restart); a worker that gets it with the group ignores it.
    process.on('SIGHUP', () => {});
  }

  try {
    await starting;
  } catch (err) {
    startFailed = true;
    const message = err instanceof Error ? err.message : String(err);
    log(`workers: worker ${index} (pid ${process.pid}) failed to start: ${message}`);
    send({ sbworker: 'failed', message }, () => process.exit(1));
    throw err;
  }
  send({ sbworker: 'ready' });
  return {
    role: 'worker',
    index,
    stop,
    stopped: new Promise<void>(() => undefined), // the process exits when stopped
    pids: () => [process.pid],
    relay: null,
    restart: () => Promise.resolve(),
    stopping: false,
    snapshots: () => Promise.resolve([]),
  };
}
