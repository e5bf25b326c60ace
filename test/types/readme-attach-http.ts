// The README's "Mount on an existing HTTP server" snippets, verbatim: `npm run typecheck` checks them
// under strict (test/readme.test.ts checks that README.md still holds this text). Type-checked, not run.
import http from 'node:http';
import { Server } from 'switchboard';

const app = http.createServer((req, res) => res.end('hello over HTTP'));
const chat = new Server({});                    // no listen: it serves the paths it is attached to
chat.on('connection', (conn) => conn.on('message', (msg) => chat.broadcast(msg)));
const feed = new Server({ maxConnections: 1000 });
feed.on('connection', (conn) => conn.send(`feed for ${conn.request?.url}`));
chat.attach(app, { path: '/chat' });
feed.attach(app, { path: '/feed', perMessageDeflate: true });
app.listen(8080);
