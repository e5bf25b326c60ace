// Child process for client.test.ts: a Server with the wire protocol on the port given, so that the
// test can SIGSTOP it (a server that stops answering without closing). Prints "listening PORT".
import { Server } from '../src/index.js';

const server = new Server({ listen: `ws://127.0.0.1:${process.argv[2] ?? 0}`, wire: true });
await server.listen();
process.stdout.write(`listening ${new URL(server.addresses[0]!).port}\n`);
