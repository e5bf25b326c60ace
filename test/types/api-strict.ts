// The public API's types under strict (checked by `npm run typecheck`, never run): every
// `@ts-expect-error` below is a mistake the compiler must catch; if it stopped catching one,
// the directive itself would be the error.
import http from 'node:http';
import {
  Server, SwitchboardError, connect, type Connection, type ConnectionEvents, type PerMessageDeflateOptions, type ServerEvents,
  type VerifyClientInfo, type WebSocketClientOptions, type WebSocketServerOptions,
} from 'switchboard';

const deflate: PerMessageDeflateOptions = { threshold: 256, serverMaxWindowBits: 12 };
const verifyClient = (info: VerifyClientInfo): boolean => info.url.startsWith('/chat') && info.origin !== 'https://evil.example';
const serverWs: WebSocketServerOptions = { path: '/chat', perMessageDeflate: deflate, verifyClient, origins: ['https://example.com'] };
const clientWs: WebSocketClientOptions = { protocols: ['chat.v1'], headers: { Authorization: 'Bearer x' } };

// A misspelt WebSocket option.
// @ts-expect-error perMesageDeflate is not an option (perMessageDeflate is)
new Server({ listen: 'ws://127.0.0.1:0', websocket: { perMesageDeflate: true } });
// A value of the wrong type.
// @ts-expect-error verifyClient is a function
new Server({ listen: 'ws://127.0.0.1:0', websocket: { verifyClient: 42 } });
// A server-only option on the client side.
// @ts-expect-error origins is for servers
await connect('ws://127.0.0.1:1/', { websocket: { origins: ['x'] } });
// @ts-expect-error a client option misspelt
await connect('ws://127.0.0.1:1/', { websocket: { protocol: ['chat.v1'] } });

// Connection<Data>: a typed conn.data.
interface Member { name: string; joined: number }
const server = new Server<Member>({ listen: 'ws://127.0.0.1:0', websocket: serverWs });
server.on('connection', (conn) => {
  conn.data = { name: 'guest', joined: Date.now() };
  const name: string = conn.data.name;
  // @ts-expect-error Member has no age
  conn.data.age = 3;
  conn.on('message', (msg) => conn.send(`${name}: ${typeof msg === 'string' ? msg : msg.length}`));
  // A handler of the wrong signature.
  // @ts-expect-error a message is a string or a Buffer, not a number
  conn.on('message', (msg: number) => msg.toFixed());
  // @ts-expect-error close gives a CloseInfo, not a code
  conn.on('close', (code: number) => code);  // The server's own methods take and give the same Connection<Member> (Member is an interface, no index signature).
  server.publish('room', `${conn.data.name} joined`, { except: conn });
  server.broadcast('hello', { except: conn });
  for (const other of server.connections) other.send(`${other.data.name} is here`);
  for (const other of server.subscribers('room')) other.send(String(other.data.joined));
});
// @ts-expect-error 'connection' hands over a Connection
server.on('connection', (conn: string) => conn);
// @ts-expect-error no such event
server.on('connected', () => {});
const onClose: (...args: ConnectionEvents['close']) => void = (info) => info.code;
const onRefused: (...args: ServerEvents['refused']) => void = ({ remote, reason }) => `${remote}: ${reason}`;
void onClose;
void onRefused;

// attach(): a path is required and the options are the server's WebSocket options.
const app = http.createServer();
server.attach(app, { path: '/chat', protocols: ['chat.v1'] });
// @ts-expect-error path is required
server.attach(app, { protocols: ['chat.v1'] });
// @ts-expect-error a misspelt option
server.attach(app, { path: '/feed', orgins: ['x'] });

// connect() is typed too, and rejects with a SwitchboardError (Node's error as its cause).
try {
  const conn: Connection<{ seq: number }> = await connect<{ seq: number }>('ws://127.0.0.1:1/', { websocket: clientWs });
  conn.data.seq = 1;
} catch (err) {
  if (err instanceof SwitchboardError) console.log(err.code, err.cause);
}
// Internals are not part of the API: conn.socket exists in the sources (tagged @internal, left out of the .d.ts).
