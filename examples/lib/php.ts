/**
 * The few PHP built-ins the ported seed programs use besides the socket functions, so that the
 * ports read like the originals. Where PHP works on bytes and that would break text, these work
 * on characters, and say so.
 */
export const PHP_EOL = '\n';

/** echo: writes without adding a newline. */
export function echo(...parts: Array<string | number>): void {
  process.stdout.write(parts.join(''));
}

/** printf with no arguments, as the seeds use it. */
export function printf(text: string): void {
  process.stdout.write(text);
}

/**
 * die(message): prints and ends the script. PHP's die("text") exits with status 0; this one
 * exits with 1 so that a caller (a shell, a test) can tell the script failed.
 */
export function die(message: string): never {
  process.stdout.write(message);
  process.exit(1);
}

const graphemes = new Intl.Segmenter(undefined, { granularity: 'grapheme' });

/**
 * strrev: PHP reverses bytes, which turns UTF-8 text such as "你好" into invalid bytes. This
 * reverses user-perceived characters (grapheme clusters), which is what the seeds meant.
 */
export function strrev(text: string): string {
  return Array.from(graphemes.segment(text), (s) => s.segment).reverse().join('');
}

/** trim: strips " \t\n\r\0\x0B" from both ends, as PHP's trim() does (not all Unicode spaces). */
export function trim(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/^[ \t\n\r\0\x0B]+|[ \t\n\r\0\x0B]+$/g, '');
}

/** strlen: the length in bytes of the UTF-8 text, as PHP counts (not JS's UTF-16 units). */
export function strlen(text: string): number {
  return Buffer.byteLength(text, 'utf8');
}

/** intval($socket): PHP 7 printed a socket resource's number; the port uses Socket#id. */
export function intval(x: { id: number } | number | string): number {
  return typeof x === 'object' ? x.id : Math.trunc(Number(x));
}

/** getprotobyname('tcp') and friends, from /etc/protocols. */
export function getprotobyname(name: string): number | false {
  const table: Record<string, number> = { ip: 0, icmp: 1, tcp: 6, udp: 17, ipv6: 41 };
  return table[name] ?? false;
}

/** date('Y-m-d H:i:s') in local time (only the letters the seeds use: Y m d H i s). */
export function date(format: string, when = new Date()): string {
  const two = (n: number): string => String(n).padStart(2, '0');
  const parts: Record<string, string> = {
    Y: String(when.getFullYear()), m: two(when.getMonth() + 1), d: two(when.getDate()),
    H: two(when.getHours()), i: two(when.getMinutes()), s: two(when.getSeconds()),
  };
  return format.replace(/[YmdHis]/g, (c) => parts[c]!);
}

/**
 * The port (and host) a port of a seed program uses: argv[2] or $PORT, else the seed's number;
 * $HOST, else the seed's address.
 */
export function portArg(defaultPort: number, argIndex = 2): number {
  const v = process.argv[argIndex] ?? process.env.PORT;
  return v === undefined || v === '' ? defaultPort : Number(v);
}

export function hostEnv(defaultHost: string): string {
  return process.env.HOST || defaultHost;
}
