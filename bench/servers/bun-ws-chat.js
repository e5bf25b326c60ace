// Bun (reference, run with --bun): chat room, every message published to everyone (sender included).
import { ready, portArg } from './control.js';

let conns = 0;
const server = Bun.serve({
  hostname: '127.0.0.1',
  port: portArg(),
  fetch(req, srv) {
    return srv.upgrade(req) ? undefined : new Response('WebSocket only', { status: 400 });
  },
  websocket: {
    open(ws) { conns++; ws.subscribe('room'); },
    message(_ws, message) { server.publish('room', message); },
    close() { conns--; },
  },
});
ready(server.port, () => conns);
