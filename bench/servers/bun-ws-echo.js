// Bun (reference, run with --bun): WebSocket echo on Bun.serve, whose WebSocket server is uWebSockets.
import { ready, portArg } from './control.js';

let conns = 0;
const server = Bun.serve({
  hostname: '127.0.0.1',
  port: portArg(),
  fetch(req, srv) {
    return srv.upgrade(req) ? undefined : new Response('WebSocket only', { status: 400 });
  },
  websocket: {
    open() { conns++; },
    message(ws, message) { ws.send(message); },
    close() { conns--; },
  },
});
ready(server.port, () => conns);
