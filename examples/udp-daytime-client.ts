/**
 * Seed 003, fsockopen() Example #2: asks a daytime server (RFC 867) over UDP and prints the
 * answer (26 bytes at most, as the seed reads).
 *
 *   npx switchboard serve daytime          (RFC 867 over TCP and UDP on 10013)
 *   npx tsx examples/udp-daytime-client.ts [port]   (port: argv, or $PORT, default 10013; $HOST default 127.0.0.1)
 *
 * The seed asks port 13, which only root may serve; the default here is switchboard's daytime
 * port (10013). If nothing answers,
 * fread() gives up after PHP's default_socket_timeout (60 s; $TIMEOUT seconds here).
 */
import { fclose, fread, fsockopen, fwrite, stream_set_timeout } from '../src/sockets/index.js';
import { echo, hostEnv, portArg } from './lib/php.js';

const err = { errno: 0, errstr: '' }; // PHP's &$errno, &$errstr
const fp = await fsockopen(`udp://${hostEnv('127.0.0.1')}`, portArg(10013), err);
if (!fp) {
  echo(`ERROR: ${err.errno} - ${err.errstr}<br />\n`);
} else {
  stream_set_timeout(fp, Number(process.env.TIMEOUT ?? 60));
  await fwrite(fp, '\n');
  echo(await fread(fp, 26) || '');
  fclose(fp);
}
