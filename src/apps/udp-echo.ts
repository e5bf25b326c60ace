/** udp-echo (RFC 862): every datagram is sent back unchanged to where it came from. */
import type { Server } from '../core/server.js';
import { bareEcho, startApp, type AppOptions } from './common.js';

export const UDP_ECHO_DEFAULT = 'udp://127.0.0.1:10007';

export function udpEchoServer(options: AppOptions = {}): Promise<Server> {
  return startApp('udp-echo', options, { listen: UDP_ECHO_DEFAULT }, (server) => bareEcho(server));
}
