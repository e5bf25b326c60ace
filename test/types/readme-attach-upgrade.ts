// The README's handleUpgrade() snippet, verbatim (type-checked, not run).
import http from 'node:http';
import { Server } from 'switchboard';

const app = http.createServer();
const live = new Server({ websocket: { path: '/live' } });
app.on('upgrade', (req, socket, head) => {
  if (req.headers.cookie === undefined) socket.destroy();   // the application decides who may upgrade
  else live.handleUpgrade(req, socket, head);
});
app.listen(8080);
