// Slow readers: WebSocket clients that finish the handshake and then never read again,
// so that the server's writes to them back up. A paused socket does not notice being dropped,
// so the harness asks the server how many connections it still holds.
import net from 'node:net';
import { randomBytes } from 'node:crypto';

function openOne(port, timeoutMs) {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    const timer = setTimeout(() => { socket.destroy(); reject(new Error('slow reader handshake timed out')); }, timeoutMs);
    let head = '';
    socket.on('error', () => {});
    socket.once('connect', () => {
      socket.write(`GET / HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
        `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\n\r\n`);
    });
    const onData = (chunk) => {
      head += chunk.toString('latin1');
      if (!head.includes('\r\n\r\n')) return;
      clearTimeout(timer);
      socket.off('data', onData);
      if (!head.startsWith('HTTP/1.1 101')) { socket.destroy(); reject(new Error(`slow reader rejected: ${head.split('\r\n')[0]}`)); return; }
      socket.pause(); // from here on, nothing is read: the kernel buffers fill, then the server's
      resolve(socket);
    };
    socket.on('data', onData);
  });
}

export async function openSlowReaders(port, count, timeoutMs = 5000) {
  const sockets = await Promise.all(Array.from({ length: count }, () => openOne(port, timeoutMs)));
  return { close() { for (const s of sockets) s.destroy(); } };
}
