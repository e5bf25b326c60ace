// The README's "Mount on an existing HTTP server" snippet for Express, verbatim (type-checked, not run).
import express from 'express';
import { Server } from 'switchboard';

const app = express();
app.get('/health', (req, res) => { res.send('ok'); });
const httpServer = app.listen(8080);
const ws = new Server({ websocket: { origins: ['https://example.com'] } });
ws.on('connection', (conn) => conn.on('message', (msg) => conn.send(msg)));
ws.attach(httpServer, { path: '/ws' });
