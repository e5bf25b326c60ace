/**
 * `switchboard bridge FROM TO`: listens on FROM and, for each client, opens one connection to TO;
 * messages flow both ways at the pace of the slower side, and when one side closes the other is
 * closed. Exposes a text:// service as ws:// (or the reverse), tcp:// as ws:// (websockify), ...
 */
import { Server, connect, type Connection, type Message } from '../index.js';
import { certificateHint } from './client-commands.js';
import { CLIENT_HELP, CLIENT_OPTIONS, clientOptions } from './client-options.js';
import { LISTEN_OPTIONS, peerName, serveUntilStopped, serverOptions } from './listen.js';
import { readMessages, sendPaced } from './messages.js';
import { UsageError, describeError, noExtraArguments, parseCommandLine, urlArgument } from './usage.js';

/** Bytes from a tcp:// side cut into lines for a text:// side: a line longer than this is cut. */
const MAX_LINE = 1024 * 1024;
/** Clients bridged at once (each holds two connections), unless --max-connections says otherwise. */
const BRIDGE_MAX_CONNECTIONS = 1000;

export const BRIDGE_USAGE = `usage: switchboard bridge FROM_URL TO_URL [options]

Listens on FROM_URL; for each client, connects to TO_URL and passes messages both ways. When one
side closes, the other is closed. E.g. a text:// service as WebSocket, and the reverse:

  switchboard bridge ws://0.0.0.0:8080 text://127.0.0.1:9999
  switchboard bridge text://127.0.0.1:7000 ws://example.org/chat

Messages keep their kind between text://, ws:// and frame://. A tcp:// side is a byte stream: text
messages reach it as lines, binary ones as bytes; its bytes reach a text:// side as lines and a
ws:// or frame:// side as binary messages (--text: as lines, in text messages). Each side is read
only as fast as the other takes what it is sent, so a slow side slows the other down instead of
filling memory; a client is held (and not read) until its upstream connection is open.

  --text                tcp:// FROM or TO: its bytes go to the other side as lines (text messages)
  --max-connections N   clients at once (default ${BRIDGE_MAX_CONNECTIONS}); the next one is told "server full"
  --max-accepts N       stop after N clients, once they are done (exit 0)
  --tls-cert FILE --tls-key FILE   certificate for a tls:// or wss:// FROM_URL
  --quiet               no notes on stderr about clients (connected, closed, upstream failures)
For the connections to TO_URL:
${CLIENT_HELP}
  -h, --help            this text

Runs until SIGINT or SIGTERM (exit 0) or --max-accepts. A client whose upstream cannot be reached is
closed (WebSocket: 1011) and noted. Exit 1 when it cannot listen, 2 on bad usage.`;

export async function runBridge(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommandLine('bridge', {
    args: argv,
    allowPositionals: true,
    options: { ...LISTEN_OPTIONS, ...CLIENT_OPTIONS, 'text': { type: 'boolean' } },
  });
  if (values.help) {
    console.log(BRIDGE_USAGE);
    return 0;
  }
  const [from, to] = positionals;
  if (!from || !to) throw new UsageError('which two URLs? e.g. switchboard bridge ws://127.0.0.1:8080 text://127.0.0.1:9999');
  noExtraArguments(positionals, 2);
  const fromAddress = urlArgument(from);
  const toAddress = urlArgument(to);
  if (fromAddress.transport === 'udp' || toAddress.transport === 'udp') throw new UsageError('bridge: udp:// has no connection to close with the other side; use stream URLs');
  if (values.text && fromAddress.protocol !== 'raw' && toAddress.protocol !== 'raw') throw new UsageError('--text is for a tcp:// side (bytes into lines)');
  const connectOptions = clientOptions(to, values);
  const server = new Server(serverOptions(from, values, BRIDGE_MAX_CONNECTIONS));
  const note = values.quiet ? () => {} : (line: string) => console.error(line);
  const text = values.text === true;

  server.on('connection', (client) => {
    const name = peerName(client);
    void (async () => {
      let upstream: Connection;
      try {
        upstream = await connect(to, connectOptions);
      } catch (err) {
        note(`! ${name}: cannot connect to ${to}: ${describeError(err)}${certificateHint(err)}`);
        client.close(1011, 'upstream unavailable');
        return;
      }
      if (!client.isOpen) {
        upstream.close();
        return;
      }
      note(`+ ${name} <-> ${upstream.remote}`);
      const done = Promise.all([pipe(client, upstream, text), pipe(upstream, client, text)]);
      const [a, b] = await Promise.all([client.closed(), upstream.closed(), done]);
      note(`- ${name} closed (${a.code}${a.reason ? ` ${a.reason}` : ''}; upstream ${b.code}${b.reason ? ` ${b.reason}` : ''})`);
    })();
  });
  server.on('refused', ({ remote, reason }) => note(`! ${remote} refused: ${reason}`));
  server.on('error', (err) => console.error(`switchboard bridge: ${describeError(err)}`));
  return serveUntilStopped(server, 'bridge', from, note);
}

/**
 * One direction: what `from` receives is sent to `to`, waiting for `to` to drain when its buffer
 * is full; meanwhile `from` is paused (not read), so the slow side sets the pace and what waits
 * is bounded by the kernel's buffers, not held here. Either end closes both.
 */
async function pipe(from: Connection, to: Connection, text: boolean): Promise<void> {
  let source: AsyncIterable<Message> = from;
  // Bytes become lines for a side that speaks lines, or wants them (--text).
  if (from.protocol === 'raw' && to.protocol !== 'raw' && (to.protocol === 'line' || text)) {
    source = readMessages(from as unknown as AsyncIterable<Buffer>, 'lines', MAX_LINE);
  }
  const toRaw = to.protocol === 'raw';
  try {
    for await (const m of source) {
      // A text message reaches a byte stream as its line.
      if (!await sendPaced(to, toRaw && typeof m === 'string' ? `${m}\n` : m, from)) break;
    }
  } finally {
    from.close();
    to.close();
  }
}
