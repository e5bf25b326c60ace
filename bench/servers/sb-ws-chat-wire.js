// switchboard: the WebSocket chat room of sb-ws-chat.js with the wire protocol on, and every
// receiver subscribed to the room in the protocol's envelope ({"t":"msg","topic":"room","data":...},
// encoded once per publish), so that the row measures what the envelope costs a fan-out against
// plain messages. sockload's senders know their own messages by their first bytes, so a connection
// that speaks takes the room plain from its first message on (the receivers, 90 of 100, stay framed).
import { Server } from '../../dist/src/index.js';
import { ready, portArg } from './control.js';

let conns = 0;
const server = new Server({ listen: `ws://127.0.0.1:${portArg()}`, maxConnections: 100000, wire: true });
server.on('connection', (conn) => {
  conns++;
  server.wire.subscribe(conn, 'room');
  let spoke = false;
  conn.on('message', (message) => {
    if (!spoke) {
      spoke = true;
      conn.unsubscribe('room');
      conn.subscribe('room');
    }
    server.publish('room', message);
  });
  conn.on('close', () => conns--);
});
await server.listen();
ready(new URL(server.addresses[0]).port, () => conns);
