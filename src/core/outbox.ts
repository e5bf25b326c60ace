/**
 * What a connection was sent in one event-loop round, before it reaches the socket: messages
 * joined into one buffer (text joined as text and encoded once), their size (exact, or an upper
 * bound that is cheaper), the send-buffer rule over them, and the queue of connections to flush
 * once the round's reads are handled. Plain values only: no socket, no timer (the caller's
 * socket says when a round ends, see FlushQueue).
 */
import { wireBytes, type Wire } from '../codec/types.js';

/** Text queued in one round is joined up to this many UTF-16 units, then encoded and queued as bytes. */
export const TEXT_JOIN_MAX = 4096;
/** Up to this many queued bytes are joined into one buffer; beyond, the copy costs more than writev saves. */
export const CONCAT_MAX = 64 * 1024;

/** The UTF-8 size of a message being queued: exact, or for text its upper bound (3 bytes per UTF-16 unit). */
export function sizeOf(wire: Wire | null, exact: boolean): number {
  if (wire === null) return 0;
  if (typeof wire !== 'string') return wire.length;
  return exact ? Buffer.byteLength(wire, 'utf8') : wire.length * 3;
}

export class Outbox {
  /** Nothing, one buffer, text (joined, encoded when taken), or several buffers. */
  private out: Wire | Buffer[] | null = null;
  /** Bytes of `out` when it is bytes; text is measured only when asked (see size). */
  private outBytes = 0;
  /** The protocol's last bytes, kept out of the queue until release() (see hold). */
  private held: Buffer | null = null;

  get empty(): boolean {
    return this.out === null;
  }

  /** Queues one message's wire after what is queued. True when the outbox was empty: a flush is to be scheduled. */
  push(wire: Wire): boolean {
    const out = this.out;
    if (out === null) {
      this.out = wire;
      if (typeof wire !== 'string') this.outBytes = wire.length;
      return true;
    }
    if (typeof out === 'string' && typeof wire === 'string') {
      this.out = out + wire; // a rope: no copy until taken
      // Past a few KiB the joined text becomes bytes, so that a limit check never measures a long rope over and over.
      if (this.out.length > TEXT_JOIN_MAX) {
        const bytes = wireBytes(this.out);
        this.out = bytes;
        this.outBytes = bytes.length;
      }
      return false;
    }
    // Text and bytes mixed: from here on, bytes.
    const bytes = wireBytes(wire);
    if (typeof out === 'string') {
      const head = wireBytes(out);
      this.out = [head, bytes];
      this.outBytes = head.length + bytes.length;
    } else {
      if (Array.isArray(out)) out.push(bytes);
      else this.out = [out, bytes];
      this.outBytes += bytes.length;
    }
    return false;
  }

  /**
   * Bytes queued. Text (queued as one joined string) is counted exactly only when asked: measuring
   * it per message cost 13% of line echo. Otherwise its upper bound, 3 bytes per UTF-16 unit,
   * which is enough to tell that a limit is far.
   */
  size(exact: boolean): number {
    const out = this.out;
    return typeof out === 'string' ? sizeOf(out, exact) : this.outBytes;
  }

  /**
   * Empties the queue and returns what it held, in order: one buffer (text encoded once, bytes up
   * to CONCAT_MAX joined), or the buffers for one writev; null when empty.
   */
  take(): Buffer | Buffer[] | null {
    const out = this.out;
    if (out === null) return null;
    const n = this.outBytes;
    this.out = null;
    this.outBytes = 0;
    if (!Array.isArray(out)) return wireBytes(out);
    return n <= CONCAT_MAX ? Buffer.concat(out, n) : out;
  }

  /** Drops what is queued (a peer that does not read; a socket that is gone). Held bytes stay. */
  clear(): void {
    this.out = null;
    this.outBytes = 0;
  }

  /**
   * Keeps the protocol's last bytes (a close echo, an error's close frame) aside while messages
   * before them still wait for the application, whose replies go first: they are not counted by
   * size() and not taken by take() until release(). A later hold replaces an earlier one.
   */
  hold(bytes: Buffer): void {
    this.held = bytes;
  }

  /** The held bytes, given back once (null when none): the caller queues them now. */
  release(): Buffer | null {
    const bytes = this.held;
    this.held = null;
    return bytes;
  }
}

/**
 * The send-buffer rule's answer for one more message. `unsent`: what the socket holds from earlier
 * rounds (the kernel would not take it); it is held against the bound `max`, while a burst queued
 * in this round is not, up to a ceiling of four times the bound. Whatever its size, one message is
 * taken when what waits is under the bound (the bound is for peers that do not read, not for big
 * messages).
 * - 'take': queue it.
 * - 'over': queue it, though more than the bound waits from earlier rounds (the caller starts its
 *   drainTimeout clock; policy 'close' only).
 * - 'drop': do not queue it (policy 'drop').
 * - 'ceiling': past four times the bound: the peer is a slow reader now (policy 'close').
 */
export function admit(outbox: Outbox, unsent: number, adding: Wire, max: number, policy: 'close' | 'drop'): 'take' | 'over' | 'drop' | 'ceiling' {
  // Text at its upper bound first; measured only when that bound is over.
  if (unsent <= max && unsent + outbox.size(false) + sizeOf(adding, false) <= 4 * max) return 'take';
  const waiting = unsent + outbox.size(true);
  if (waiting <= max) return 'take';
  const overCeiling = waiting + sizeOf(adding, true) > 4 * max;
  if (policy === 'drop') return unsent <= max && !overCeiling ? 'take' : 'drop';
  if (overCeiling) return 'ceiling';
  return unsent > max ? 'over' : 'take';
}

/** Under the 'drop' policy, whether the next message would be dropped, decided before it is encoded. */
export function dropsNext(outbox: Outbox, unsent: number, max: number): boolean {
  if (unsent <= max && unsent + outbox.size(false) <= 4 * max) return false;
  const waiting = unsent + outbox.size(true);
  return waiting > max && (unsent > max || waiting >= 4 * max);
}

/** Whatever tells a FlushQueue when this round's reads are handled (a TransportSocket does). */
export interface RoundHook {
  afterRound(run: () => void): void;
}

/**
 * Connections with something queued, flushed together once the input read in this round is
 * handled: sixteen replies to sixteen pipelined requests, or ten chat lines from ten senders,
 * leave in one buffer and one write per connection. The first one queued in a round asks its
 * socket when the round ends.
 */
export class FlushQueue<T extends { flush(): void }> {
  private list: T[] = [];
  private scheduled = false;
  private readonly run = (): void => {
    this.scheduled = false;
    // Swap first: a flush that leads to more writes queues them for the next round.
    const list = this.list;
    this.list = [];
    for (let i = 0; i < list.length; i++) list[i]!.flush();
  };

  /** Flushes `item` once the round `round` tells of has ended (queue it once per round: when its outbox was empty). */
  add(item: T, round: RoundHook): void {
    this.list.push(item);
    if (this.scheduled) return;
    this.scheduled = true;
    round.afterRound(this.run);
  }

  /** How many wait for the flush. */
  get size(): number {
    return this.list.length;
  }
}
