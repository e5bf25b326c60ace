/**
 * Join, leave and rename notices, gathered: at most one notice line per interval, with exact
 * names when few things happened and counts when many did ("* 37 users joined; 5 users left").
 *
 * Sending every join to every member makes N joins cost N² writes (10,000 idle connections took
 * two minutes of CPU to welcome) and a join storm floods everyone. Gathered, a join costs O(1)
 * and each member gets at most one notice line per interval from this process, whatever the churn.
 */

/** Up to this many events of a kind are told by name; more are counted. */
export const NOTICE_NAMES = 3;

export class NoticeBatch {
  private joined: string[] = [];
  private joinCount = 0;
  private left: string[] = [];
  private leftCount = 0;
  private renamed: string[] = [];
  private renameCount = 0;
  private timer: NodeJS.Timeout | null = null;
  private immediate: NodeJS.Immediate | null = null;
  private lastFlush = -Infinity;
  private stopped = false;

  /**
   * @param interval least time between two notice lines (ms)
   * @param send writes one notice line to the room
   */
  constructor(private readonly interval: number, private readonly send: (line: string) => void) {}

  join(name: string): void {
    if (this.joinCount++ < NOTICE_NAMES) this.joined.push(name);
    this.schedule();
  }

  leave(name: string): void {
    if (this.leftCount++ < NOTICE_NAMES) this.left.push(name);
    this.schedule();
  }

  rename(from: string, to: string): void {
    if (this.renameCount++ < NOTICE_NAMES) this.renamed.push(`${from} is now ${to}`);
    this.schedule();
  }

  /** Drops what is pending and sends no more (the server has closed, its hub too). */
  stop(): void {
    this.stopped = true;
    if (this.timer !== null) clearTimeout(this.timer);
    if (this.immediate !== null) clearImmediate(this.immediate);
    this.timer = null;
    this.immediate = null;
  }

  private schedule(): void {
    if (this.stopped) return;
    if (this.timer !== null || this.immediate !== null) return;
    const wait = this.lastFlush + this.interval - Date.now();
    // After a quiet spell, at the end of this turn of the event loop (so that what arrived in
    // one read is one line); otherwise once the interval since the last line is over.
    if (wait <= 0) this.immediate = setImmediate(() => { this.immediate = null; this.flush(); });
    else {
      this.timer = setTimeout(() => { this.timer = null; this.flush(); }, wait);
      this.timer.unref();
    }
  }

  private flush(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    if (this.immediate !== null) clearImmediate(this.immediate);
    this.timer = null;
    this.immediate = null;
    const parts: string[] = [];
    const tell = (names: string[], count: number, verb: string, counted: string): void => {
      if (count === 0) return;
      parts.push(count <= NOTICE_NAMES ? (verb === '' ? names.join('; ') : `${names.join(', ')} ${verb}`) : `${count} users ${counted}`);
    };
    tell(this.joined, this.joinCount, 'joined', 'joined');
    tell(this.left, this.leftCount, 'left', 'left');
    tell(this.renamed, this.renameCount, '', 'changed names');
    this.joined = [];
    this.left = [];
    this.renamed = [];
    this.joinCount = this.leftCount = this.renameCount = 0;
    if (parts.length === 0) return;
    this.lastFlush = Date.now();
    this.send(`* ${parts.join('; ')}`);
  }
}
