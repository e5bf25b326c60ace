/**
 * daytime (RFC 867), over TCP and UDP on one port: TCP clients get the date and are closed; a UDP
 * datagram of any content is answered with one datagram holding the date. The text is ctime's
 * ("Sat Nov 21 12:30:00 2026\r\n", 26 bytes), which is what seed 003's `fread($fp, 26)` reads.
 */
import type { Server } from '../core/server.js';
import { startApp, type AppOptions } from './common.js';

export const DAYTIME_DEFAULT = ['tcp://127.0.0.1:10013', 'udp://127.0.0.1:10013'];

const DAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** ctime(3) format with "\r\n": "Sat Nov 21 12:30:00 2026\r\n". */
export function daytimeText(d: Date = new Date()): string {
  const two = (n: number): string => String(n).padStart(2, '0');
  const day = String(d.getDate()).padStart(2, ' ');
  return `${DAYS[d.getDay()]} ${MONTHS[d.getMonth()]} ${day} ${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())} ${d.getFullYear()}\r\n`;
}

export function daytimeServer(options: AppOptions = {}): Promise<Server> {
  return startApp('daytime', options, { listen: DAYTIME_DEFAULT }, (server) => {
    server.on('connection', (conn) => {
      if (conn.address.transport === 'udp') {
        conn.on('message', () => conn.send(daytimeText()));
      } else {
        conn.send(daytimeText());
        conn.close();
      }
    });
  });
}
