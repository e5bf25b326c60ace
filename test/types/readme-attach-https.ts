// The README's "Mount on an existing HTTP server" snippet for node:https, verbatim (type-checked, not run).
import https from 'node:https';
import { readFileSync } from 'node:fs';
import { Server } from 'switchboard';

const app = https.createServer({ key: readFileSync('key.pem'), cert: readFileSync('cert.pem') }, (req, res) => res.end('hi'));
const wss = new Server({ heartbeatInterval: 20_000 });
wss.on('connection', (conn) => conn.send('over wss://'));
wss.attach(app, { path: '/ws' });
app.listen(8443);
