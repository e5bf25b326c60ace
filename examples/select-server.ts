/**
 * Seed 004, the select() server: up to 10 clients at once, a welcome banner for each, and
 * "OK ... <input>" back for everything a client sends.
 *
 *   npx tsx examples/select-server.ts [port]     (port: argv, or $PORT, default 5000; $HOST default 0.0.0.0)
 *
 * Try it with `nc 127.0.0.1 5000` from a few terminals.
 */
import {
  AF_INET, SOCK_STREAM, type Socket, socket_accept, socket_bind, socket_close, socket_create, socket_getpeername,
  socket_last_error, socket_listen, socket_read, socket_select, socket_strerror, socket_write,
} from '../src/sockets/index.js';
import { die, echo, hostEnv, portArg, trim } from './lib/php.js';

// error_reporting(~E_NOTICE); set_time_limit(0): nothing to do in Node

const address = hostEnv('0.0.0.0');
const port = portArg(5000);
const max_clients = 10;
//1. 创建连接
let sock: Socket | false;
if (!(sock = socket_create(AF_INET, SOCK_STREAM, 0))) {
  const errorcode = socket_last_error();
  const errormsg = socket_strerror(errorcode);
  die(`Couldn't create socket: [${errorcode}] ${errormsg} \n`);
}

echo('Socket created \n');

// 绑定连接
if (!(await socket_bind(sock, address, port))) {
  const errorcode = socket_last_error();
  const errormsg = socket_strerror(errorcode);

  die(`Could not bind socket : [${errorcode}] ${errormsg} \n`);
}

echo('Socket bind OK \n');

//监听
if (!(await socket_listen(sock, 10))) {
  const errorcode = socket_last_error();
  const errormsg = socket_strerror(errorcode);

  die(`Could not listen on socket : [${errorcode}] ${errormsg} \n`);
}

echo('Socket listen OK \n');

echo('Waiting for incoming connections... \n');

//array of client sockets
const client_socks: Array<Socket | null> = [];

//array of sockets to read
let read: Socket[] = [];

//开始循环接收进来的连接和已经存在的连接
while (true) {
  //准备一个存储socket的数组
  read = [];

  //第一个是主服务的 socket
  read[0] = sock;

  //然后添加存在的 client sockets (the seed keys them $read[$i + 1]; a JS array is narrowed by
  // socket_select, so they are appended and looked up with includes())
  for (let i = 0; i < max_clients; i++) {
    const c = client_socks[i];
    if (c != null) {
      read.push(c);
    }
  }

  //调用 select - 遇到错误 终止调用
  if ((await socket_select(read, null, null, null)) === false) {
    const errorcode = socket_last_error();
    const errormsg = socket_strerror(errorcode);

    die(`Could not listen on socket : [${errorcode}] ${errormsg} \n`);
  }

  //如果包含了主服务的 socket, 那么就可以就收新的客户端socket连接
  // Naive, as in the seed: with all 10 slots taken, a waiting 11th connection keeps the
  // listening socket readable and this loop spins until a slot frees.
  if (read.includes(sock)) {
    for (let i = 0; i < max_clients; i++) {
      if (client_socks[i] == null) {
        const client = await socket_accept(sock); //接受连接
        if (!client) break;
        client_socks[i] = client;

        //显示连接信息 (PHP's &$address, &$port are one object here)
        const peer = { address: '', port: 0 };
        if (socket_getpeername(client, peer)) {
          echo(`Client ${peer.address} : ${peer.port} is now connected to us. \n`);
        }

        //发送语句给客户端
        let message = 'Welcome to php socket server version 1.0 \n';
        message += 'Enter a message and press enter, and i shall reply back \n';
        await socket_write(client, message);
        break;
      }
    }
  }

  //检查每个客户端是否有数据发送
  for (let i = 0; i < max_clients; i++) {
    const client = client_socks[i];
    if (client != null && read.includes(client)) {
      const input = await socket_read(client, 1024); //读取数据

      if (input == null || input === '' || input === false) {
        //如果输入为空 那么意味着客户端失去连接,关闭客户端并移除
        // The seed unsets the slot, then closes it (PHP 8: TypeError) and writes to it; the port
        // closes, frees the slot and moves on.
        socket_close(client);
        client_socks[i] = null;
        continue;
      }

      const _n = trim(input); // computed and unused, as in the seed

      const output = `OK ... ${input}`;

      echo('Sending output to client \n');

      //发送回复信息给客户端
      await socket_write(client, output);
    }
  }
}
