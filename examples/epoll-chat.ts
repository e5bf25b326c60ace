/**
 * Seed 004, the epoll chat room: every line a client sends goes to all the other clients as
 * "<id>说 : <line>". The seed uses PHP's event extension (libevent, epoll); lib/event.ts is a
 * small EventBase/Event on top of socket_select() so the code keeps its shape.
 *
 *   npx tsx examples/epoll-chat.ts [port]        (port: argv, or $PORT, default 9999; $HOST default 0.0.0.0)
 *
 * Try it with `nc 127.0.0.1 9999` from two terminals.
 */
import {
  AF_INET, SOCK_STREAM, SOL_TCP, type Socket, socket_accept, socket_bind, socket_close, socket_create, socket_last_error,
  socket_listen, socket_read, socket_set_nonblock, socket_write,
} from '../src/sockets/index.js';
import { Event, EventBase } from './lib/event.js';
import { PHP_EOL, date, die, echo, hostEnv, intval, portArg, strlen } from './lib/php.js';

const host = hostEnv('0.0.0.0');
const port = portArg(9999);
const fd = socket_create(AF_INET, SOCK_STREAM, SOL_TCP) || die('socket_create() failed\n');
if (!(await socket_bind(fd, host, port))) die('socket_bind() failed\n');
await socket_listen(fd);
// 注意,将"监听socket"设置为非阻塞模式
socket_set_nonblock(fd);

// 这里值得注意,我们声明两个数组用来保存 事件 和 连接socket
const event_arr: Record<number, Event> = {};
const conn_arr: Record<number, Socket> = {};

echo(PHP_EOL + PHP_EOL + '欢迎来到ti-chat聊天室!发言注意遵守当地法律法规!' + PHP_EOL);
echo(`        tcp://${host}:${port}` + PHP_EOL);

const event_base = new EventBase();
const event = new Event(event_base, fd, Event.READ | Event.PERSIST, async (fd) => {
  // (the seed's `global` variables are the closure's here)

  // 非阻塞模式下,注意accpet的写法会稍微特殊一些
  let conn: Socket | false;
  if ((conn = await socket_accept(fd)) != false) {
    echo(date('Y-m-d H:i:s') + ':欢迎' + intval(conn) + '来到聊天室' + PHP_EOL);

    // 将连接socket也设置为非阻塞模式
    socket_set_nonblock(conn);

    // 此处值得注意,我们需要将连接socket保存到数组中去
    conn_arr[intval(conn)] = conn;

    const event = new Event(event_base, conn, Event.READ | Event.PERSIST, async (conn) => {
      const buffer = await socket_read(conn, 65535);
      // Not in the seed, which never notices a client leaving (its event then fires forever
      // and sends empty messages): at EOF or on an error, drop the client.
      if (buffer === '' || (buffer === false && socket_last_error(conn) !== 11)) {
        event_arr[intval(conn)]?.del();
        delete event_arr[intval(conn)];
        delete conn_arr[intval(conn)];
        socket_close(conn);
        return;
      }
      if (buffer === false) return; // EAGAIN: nothing after all
      for (const conn_item of Object.values(conn_arr)) {
        if (conn != conn_item) {
          const msg = intval(conn) + '说 : ' + buffer;
          await socket_write(conn_item, msg, strlen(msg));
        }
      }
    }, conn);

    event.add();

    // 此处值得注意,我们需要将事件本身存储到全局数组中
    event_arr[intval(conn)] = event;
  }
}, fd);

event.add();
await event_base.loop();
