/**
 * permessage-deflate (RFC 7692): negotiation and per-message compression.
 *
 * Design: synchronous zlib, one call per message, with context takeover done through a preset
 * dictionary. Node's zlib streams are asynchronous, and the synchronous `*Sync` functions (and
 * `_processChunk`) close their engine after one call, so a stream cannot carry its LZ77 window
 * from one message to the next synchronously. RFC 7692's "context takeover" means exactly "the
 * window holds the previous messages' uncompressed bytes", and zlib lets a raw deflate or
 * inflate start from such a window (deflateSetDictionary / inflateSetDictionary). So each
 * direction keeps the last 2^windowBits bytes of plaintext it has (de)compressed and passes them
 * as the dictionary of the next call. What this buys:
 *  - the session stays synchronous: messages, pings and the close frame are handled in arrival
 *    order without a queue, and the sans-I/O contract holds;
 *  - an idle connection holds at most two windows (<= 32 KiB each), not two live zlib engines
 *    (~300 KiB with the default memLevel); zlib memory exists only during a call;
 *  - inflating is bounded with zlib's `maxOutputLength`, which is checked after every output
 *    chunk as zlib produces it: a decompression bomb stops at the limit (1009).
 * The price is a zlib init (and, with context takeover, re-hashing the window) per compressed
 * message; messages under `threshold` are sent uncompressed, which RFC 7692 allows per message.
 */
import { constants, deflateRawSync, inflateRawSync } from 'node:zlib';
import { ProtocolError, SwitchboardError } from '../../errors.js';

/** The tail every compressed message loses on the wire and regains before inflating (§7.2.2). */
const TAIL = Buffer.from([0x00, 0x00, 0xff, 0xff]);

export interface PerMessageDeflateOptions {
  /** Messages shorter than this many bytes are sent uncompressed (default 1024). */
  threshold?: number;
  /**
   * Server: broadcasts and publishes of at least this many bytes are compressed once (per
   * negotiated server_max_window_bits) and the same bytes go to every deflate receiver; shorter
   * ones go uncompressed (default 1024; Infinity: never compress them).
   */
  sharedThreshold?: number;
  /** Server: never keep the server's compression context (always sent in the response). Client: ask the server for it. */
  serverNoContextTakeover?: boolean;
  /** Server: ask the client not to keep its context. Client: offer not to keep ours. */
  clientNoContextTakeover?: boolean;
  /** Largest LZ77 window (8-15) the server compresses with; server: the cap it accepts; client: requested. */
  serverMaxWindowBits?: number;
  /** Server: the window the client must stay within, if the client allows it. Client: offered limit. */
  clientMaxWindowBits?: number;
  /** zlib compression level (0-9, default 6 via zlib's default). */
  level?: number;
  /** zlib memLevel (1-9, default 8): lower trades ratio for less memory per compressing call. */
  memLevel?: number;
  /** Most bytes one message may inflate to (default: the connection's max message size); more closes with 1009. */
  maxInflated?: number;
  /**
   * Receiving side: bytes one connection may inflate before it lets the other connections go
   * first (default 1 MiB). Past it, the connection's further input waits for the next event-loop
   * round (and its socket is not read meanwhile), so one peer's decompression cannot stall the rest.
   */
  inflateBudget?: number;
}

/** The default of PerMessageDeflateOptions.inflateBudget: about a millisecond of zlib per connection per round. */
export const DEFAULT_INFLATE_BUDGET = 1 << 20;

/** What one side agreed to, in the RFC's terms. */
export interface DeflateParams {
  serverNoContextTakeover: boolean;
  clientNoContextTakeover: boolean;
  serverMaxWindowBits: number;
  clientMaxWindowBits: number;
}

export interface ExtensionOffer {
  name: string;
  params: Array<[string, string | true]>;
}

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/**
 * Parses a Sec-WebSocket-Extensions value (RFC 6455 §9.1): `name; p; q=v, name2`, values as
 * tokens or quoted strings. Returns null when the header is malformed.
 */
export function parseExtensions(header: string): ExtensionOffer[] | null {
  const out: ExtensionOffer[] = [];
  let i = 0;
  const n = header.length;
  const ws = (): void => { while (i < n && (header[i] === ' ' || header[i] === '\t')) i++; };
  const token = (): string => {
    const s = i;
    while (i < n && /[!#$%&'*+\-.^_`|~0-9A-Za-z]/.test(header[i]!)) i++;
    return header.slice(s, i);
  };
  for (;;) {
    ws();
    if (i >= n) return out.length ? out : null;
    if (header[i] === ',') { i++; continue; } // empty list elements are allowed by #rule
    const name = token();
    if (!name) return null;
    const ext: ExtensionOffer = { name: name.toLowerCase(), params: [] };
    ws();
    while (i < n && header[i] === ';') {
      i++;
      ws();
      const key = token();
      if (!key) return null;
      ws();
      let value: string | true = true;
      if (header[i] === '=') {
        i++;
        ws();
        if (header[i] === '"') {
          i++;
          let v = '';
          while (i < n && header[i] !== '"') {
            if (header[i] === '\\') i++;
            if (i < n) v += header[i++];
          }
          if (header[i] !== '"') return null;
          i++;
          if (!TOKEN.test(v)) return null; // quoted values must still be tokens (§9.1)
          value = v;
        } else {
          value = token();
          if (!value) return null;
        }
        ws();
      }
      ext.params.push([key.toLowerCase(), value]);
    }
    out.push(ext);
    ws();
    if (i >= n) return out;
    if (header[i] !== ',') return null;
    i++;
  }
}

function windowBits(v: string | true): number | null {
  if (v === true || !/^(?:[89]|1[0-5])$/.test(v)) return null;
  return Number(v);
}

interface OfferParams {
  serverNoContextTakeover: boolean;
  clientNoContextTakeover: boolean;
  serverMaxWindowBits: number | undefined;
  /** undefined: absent; true: present without a value; a number: present with one. */
  clientMaxWindowBits: number | true | undefined;
}

/** Reads the four parameters of one permessage-deflate element; null if any is unknown, repeated or malformed. */
function readParams(ext: ExtensionOffer, isResponse: boolean): OfferParams | null {
  const p: OfferParams = {
    serverNoContextTakeover: false,
    clientNoContextTakeover: false,
    serverMaxWindowBits: undefined,
    clientMaxWindowBits: undefined,
  };
  const seen = new Set<string>();
  for (const [key, value] of ext.params) {
    if (seen.has(key)) return null;
    seen.add(key);
    switch (key) {
      case 'server_no_context_takeover':
        if (value !== true) return null;
        p.serverNoContextTakeover = true;
        break;
      case 'client_no_context_takeover':
        if (value !== true) return null;
        p.clientNoContextTakeover = true;
        break;
      case 'server_max_window_bits': {
        const bits = windowBits(value);
        if (bits === null) return null;
        p.serverMaxWindowBits = bits;
        break;
      }
      case 'client_max_window_bits': {
        if (value === true) {
          // Only an offer may leave the value out ("I can take any limit you set").
          if (isResponse) return null;
          p.clientMaxWindowBits = true;
        } else {
          const bits = windowBits(value);
          if (bits === null) return null;
          p.clientMaxWindowBits = bits;
        }
        break;
      }
      default:
        return null;
    }
  }
  return p;
}

function checkBits(name: string, v: number | undefined): void {
  if (v !== undefined && !(Number.isInteger(v) && v >= 8 && v <= 15)) {
    throw new SwitchboardError('ERR_INVALID_OPTION', `perMessageDeflate.${name} must be an integer from 8 to 15, got ${v}`);
  }
}

export function checkDeflateOptions(o: PerMessageDeflateOptions): void {
  const t = o.sharedThreshold;
  if (t !== undefined && !(typeof t === 'number' && t >= 0)) {
    throw new SwitchboardError('ERR_INVALID_OPTION', `perMessageDeflate.sharedThreshold must be a number of bytes >= 0, got ${String(t)}`);
  }
  checkBits('serverMaxWindowBits', o.serverMaxWindowBits);
  checkBits('clientMaxWindowBits', o.clientMaxWindowBits);
  const b = o.inflateBudget;
  if (b !== undefined && !(typeof b === 'number' && b >= 1)) {
    throw new SwitchboardError('ERR_INVALID_OPTION', `perMessageDeflate.inflateBudget must be a number of bytes >= 1, got ${String(b)}`);
  }
}

/**
 * Server side: picks the first acceptable permessage-deflate offer (offers with unknown or bad
 * parameters are skipped, §7.1). Returns the response element and the agreed parameters, or
 * null when no offer is acceptable (the connection then goes on without compression).
 */
export function negotiateServer(offers: ExtensionOffer[], o: PerMessageDeflateOptions): { response: string; params: DeflateParams } | null {
  for (const ext of offers) {
    if (ext.name !== 'permessage-deflate') continue;
    const p = readParams(ext, false);
    if (p === null) continue;
    const parts = ['permessage-deflate'];
    const params: DeflateParams = {
      serverNoContextTakeover: p.serverNoContextTakeover || o.serverNoContextTakeover === true,
      clientNoContextTakeover: p.clientNoContextTakeover || o.clientNoContextTakeover === true,
      serverMaxWindowBits: 15,
      clientMaxWindowBits: 15,
    };
    if (params.serverNoContextTakeover) parts.push('server_no_context_takeover');
    if (params.clientNoContextTakeover) parts.push('client_no_context_takeover');
    const ourServerMax = o.serverMaxWindowBits ?? 15;
    if (p.serverMaxWindowBits !== undefined || ourServerMax < 15) {
      params.serverMaxWindowBits = Math.min(p.serverMaxWindowBits ?? 15, ourServerMax);
      parts.push(`server_max_window_bits=${params.serverMaxWindowBits}`);
    }
    if (p.clientMaxWindowBits !== undefined) {
      const offered = p.clientMaxWindowBits === true ? 15 : p.clientMaxWindowBits;
      const wanted = Math.min(o.clientMaxWindowBits ?? 15, offered);
      // With a value in the offer the client already keeps to it; answering is only needed to go lower.
      if (wanted < 15 || p.clientMaxWindowBits !== true) parts.push(`client_max_window_bits=${wanted}`);
      params.clientMaxWindowBits = wanted;
    }
    return { response: parts.join('; '), params };
  }
  return null;
}

/** Client side: the offer sent in Sec-WebSocket-Extensions. */
export function clientOffer(o: PerMessageDeflateOptions): string {
  const parts = ['permessage-deflate'];
  if (o.serverNoContextTakeover) parts.push('server_no_context_takeover');
  if (o.clientNoContextTakeover) parts.push('client_no_context_takeover');
  if (o.serverMaxWindowBits !== undefined) parts.push(`server_max_window_bits=${o.serverMaxWindowBits}`);
  parts.push(o.clientMaxWindowBits !== undefined ? `client_max_window_bits=${o.clientMaxWindowBits}` : 'client_max_window_bits');
  return parts.join('; ');
}

/**
 * Client side: checks the server's Sec-WebSocket-Extensions answer against what was offered.
 * Returns the agreed parameters, null when the server declined, or throws ERR_HANDSHAKE when
 * the answer is not one a conforming server could give (§7.1: fail the connection).
 */
export function acceptServerResponse(header: string | undefined, o: PerMessageDeflateOptions | null): DeflateParams | null {
  if (header === undefined || header.trim() === '') return null;
  const fail = (why: string): never => {
    throw new ProtocolError('ERR_HANDSHAKE', `bad Sec-WebSocket-Extensions from the server (${why}): ${header}`, 1010);
  };
  const exts = parseExtensions(header);
  if (exts === null) return fail('malformed');
  if (o === null) return fail('no extension was offered');
  if (exts.length !== 1 || exts[0]!.name !== 'permessage-deflate') return fail('only permessage-deflate was offered');
  const p = readParams(exts[0]!, true);
  if (p === null) return fail('unknown, repeated or invalid parameter');
  if (p.clientMaxWindowBits !== undefined && o.clientMaxWindowBits !== undefined && (p.clientMaxWindowBits as number) > o.clientMaxWindowBits) {
    return fail('client_max_window_bits above the offered value');
  }
  if (o.serverMaxWindowBits !== undefined && (p.serverMaxWindowBits === undefined || p.serverMaxWindowBits > o.serverMaxWindowBits)) {
    return fail('server_max_window_bits missing or above the requested value');
  }
  if (o.serverNoContextTakeover && !p.serverNoContextTakeover) return fail('server_no_context_takeover was requested');
  return {
    serverNoContextTakeover: p.serverNoContextTakeover,
    clientNoContextTakeover: p.clientNoContextTakeover || o.clientNoContextTakeover === true,
    serverMaxWindowBits: p.serverMaxWindowBits ?? 15,
    clientMaxWindowBits: (p.clientMaxWindowBits as number | undefined) ?? o.clientMaxWindowBits ?? 15,
  };
}

/** Keeps the last `size` bytes of plaintext: the LZ77 window the peer's zlib also holds. */
function slide(history: Buffer | null, data: Buffer, size: number): Buffer {
  if (data.length >= size) return Buffer.from(data.subarray(data.length - size)); // copy: do not pin the message
  if (history === null || history.length === 0) return Buffer.from(data);
  const keep = Math.min(history.length, size - data.length);
  const out = Buffer.allocUnsafe(keep + data.length);
  history.copy(out, 0, history.length - keep);
  data.copy(out, keep);
  return out;
}

/**
 * Compresses one message with a fresh context (no dictionary): it references nothing but itself,
 * so any receiver that agreed to `bits` or more can inflate it, whatever its window holds. This
 * is what lets one compression of a broadcast go to many receivers.
 */
export function compressAlone(data: Buffer, bits: number, o: PerMessageDeflateOptions): Buffer {
  const out = deflateRawSync(data, {
    finishFlush: constants.Z_SYNC_FLUSH,
    windowBits: bits, // 8 works as 9 does in compress(): zlib keeps matches within 250 bytes
    memLevel: o.memLevel ?? 8,
    level: o.level ?? constants.Z_DEFAULT_COMPRESSION,
  });
  return out.subarray(0, out.length - 4); // without the sync flush's 00 00 ff ff (§7.2.1)
}

/** One connection's compression state, for either role. */
export class PerMessageDeflate {
  readonly threshold: number;
  private readonly sendBits: number;
  private readonly recvBits: number;
  private readonly sendTakeover: boolean;
  private readonly recvTakeover: boolean;
  private sendHistory: Buffer | null = null;
  private recvHistory: Buffer | null = null;

  constructor(
    params: DeflateParams,
    isServer: boolean,
    private readonly o: PerMessageDeflateOptions,
    private readonly maxInflated: number,
  ) {
    this.threshold = o.threshold ?? 1024;
    this.sendBits = isServer ? params.serverMaxWindowBits : params.clientMaxWindowBits;
    this.recvBits = isServer ? params.clientMaxWindowBits : params.serverMaxWindowBits;
    this.sendTakeover = !(isServer ? params.serverNoContextTakeover : params.clientNoContextTakeover);
    this.recvTakeover = !(isServer ? params.clientNoContextTakeover : params.serverNoContextTakeover);
  }

  /** The LZ77 window this side compresses with (the agreed max_window_bits of its direction). */
  get sendWindowBits(): number {
    return this.sendBits;
  }

  /**
   * Forgets the sending context: the next message is compressed without a dictionary. Needed
   * when the peer's inflater took in a message this compressor did not make (a shared broadcast):
   * its window no longer ends with our history, so back-references into that would be wrong.
   */
  forgetSendContext(): void {
    this.sendHistory = null;
  }

  /** Compresses one message; the result goes in a frame with RSV1 set. */
  compress(data: Buffer): Buffer {
    const out = deflateRawSync(data, {
      finishFlush: constants.Z_SYNC_FLUSH,
      // zlib has no 8-bit raw deflate and uses 9, whose longest match distance (250) still fits 2^8.
      windowBits: this.sendBits,
      memLevel: this.o.memLevel ?? 8,
      level: this.o.level ?? constants.Z_DEFAULT_COMPRESSION,
      ...(this.sendHistory ? { dictionary: this.sendHistory } : {}),
    });
    if (this.sendTakeover) this.sendHistory = slide(this.sendHistory, data, 1 << this.sendBits);
    // A sync flush ends with the empty stored block 00 00 ff ff, which is not sent (§7.2.1).
    return out.subarray(0, out.length - 4);
  }

  /** Inflates one message (all its frames' payloads joined). Throws ProtocolError 1009 or 1007. */
  decompress(data: Buffer): Buffer {
    const input = Buffer.allocUnsafe(data.length + 4);
    data.copy(input, 0);
    TAIL.copy(input, data.length);
    let out: Buffer;
    try {
      out = inflateRawSync(input, {
        finishFlush: constants.Z_SYNC_FLUSH,
        // Always the largest window: accepting what a peer sends costs only this call's 32 KiB.
        windowBits: 15,
        maxOutputLength: Math.max(1, this.maxInflated),
        ...(this.recvHistory ? { dictionary: this.recvHistory } : {}),
      });
    } catch (err) {
      if ((err as { code?: string }).code === 'ERR_BUFFER_TOO_LARGE') {
        throw new ProtocolError('ERR_PAYLOAD_TOO_LARGE', `a compressed message inflates to more than ${this.maxInflated} bytes`, 1009);
      }
      throw new ProtocolError('ERR_PROTOCOL', `invalid compressed data: ${(err as Error).message}`, 1007);
    }
    if (out.length > this.maxInflated) {
      throw new ProtocolError('ERR_PAYLOAD_TOO_LARGE', `a compressed message inflates to more than ${this.maxInflated} bytes`, 1009);
    }
    if (this.recvTakeover) this.recvHistory = slide(this.recvHistory, out, 1 << this.recvBits);
    return out;
  }
}
