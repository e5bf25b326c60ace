/**
 * The chat's room across servers and workers: /who from the hub's presence (every process's
 * members, bounded by whoLimit), and nicknames claimed through the hub, so that a name is held
 * by one connection in all the processes sharing the room.
 *
 * Commands that ask the hub are answered in the order they came: a connection's later lines
 * wait (bounded; then its reading pauses) until the answer, so "/nick ann" then "hello" is
 * relayed as ann's.
 */
import type { Connection } from '../core/connection.js';
import type { Server } from '../core/server.js';
import { skeleton } from './chat-text.js';

/** Lines of one connection held while a command of its waits for the hub; at this many its reading pauses. */
const HELD_LINES = 64;

/** Calls `handle` for each line of `conn` in order; a handle that returns a promise holds the lines after it. */
export function inOrder(conn: Connection, handle: (line: string) => Promise<void> | void): (line: string) => void {
  let held: string[] | null = null;
  const drain = async (first: Promise<void>): Promise<void> => {
    try {
      await first;
      while (held !== null && held.length > 0 && conn.isOpen) {
        const next = handle(held.shift()!);
        if (next !== undefined) await next;
      }
    } catch {
      // A command that fails ends that connection, not the process.
      conn.close(1011, 'internal error');
    } finally {
      held = null;
      conn.resume();
    }
  };
  return (line) => {
    if (held !== null) {
      if (held.push(line) >= HELD_LINES) conn.pause();
      return;
    }
    const pending = handle(line);
    if (pending === undefined) return;
    held = [];
    void drain(pending);
  };
}

/** The claim key of a nickname in a room: one per confusable skeleton. */
export function nickKey(room: string, name: string): string {
  return `chat:${room}:nick:${skeleton(name)}`;
}

/** The /who line: members of every process, at most `limit` named, the rest counted. */
export async function whoLine(server: Server, room: string, limit: number, local: () => ReadonlySet<Connection>): Promise<string> {
  let names: string[];
  let total: number;
  let note = '';
  try {
    const p = await server.presence(room, { limit });
    names = p.members.map((m) => (typeof m.meta.name === 'string' ? m.meta.name : '?'));
    total = p.total;
  } catch {
    // The hub cannot answer (Redis down): what this process knows, said as such.
    const all = local();
    names = [];
    for (const c of all) {
      if (names.length >= limit) break;
      names.push(String(c.data.name));
    }
    total = all.size;
    note = ' (this server only: the other servers cannot be asked now)';
  }
  const more = total - names.length;
  return `* online here (${total})${note}: ${names.join(', ')}${more > 0 ? `, and ${more} more` : ''}`;
}

/** What /nick answers when the hub cannot tell whether a name is free. */
export const NICK_UNCHECKED = '* names cannot be checked across the servers right now; try again soon';
