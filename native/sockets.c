/*
 * switchboard/sockets' system calls that Node.js does not offer: Unix domain sockets as plain
 * file descriptors (stream and datagram, socketpair), sendmsg/recvmsg with SCM_RIGHTS and
 * SCM_CREDENTIALS, and setsockopt/getsockopt on any socket descriptor (multicast and IP-level
 * options, SO_REUSEPORT). Loaded only by src/sockets/ (native.ts), never by the TCP transport.
 *
 * Every call is non-blocking and returns at once: a result >= 0, or -errno (the Linux number)
 * on failure, so JavaScript keeps PHP's error reporting. Waiting is done by libuv: poll() watches
 * a descriptor with a uv_poll_t and calls JavaScript when it is readable or writable; the waiting
 * itself (blocking mode, timeouts) is JavaScript's, as for the rest of the module.
 *
 * Ownership: a descriptor created or received here belongs to JavaScript, which closes it with
 * close(); descriptors received with SCM_RIGHTS are returned as numbers and are the caller's
 * (they are marked close-on-exec, MSG_CMSG_CLOEXEC). A poll handle is freed when its close
 * callback has run; at environment teardown every open poll handle is stopped and closed.
 */
#define _GNU_SOURCE
#define NAPI_VERSION 8
#include <node_api.h>
#include <uv.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <unistd.h>

#define MAX_FDS 64          /* descriptors in one SCM_RIGHTS message (Linux allows 253) */
#define MAX_RECV (1 << 20)  /* largest single recvmsg */

#define CHECK(call)                                                         \
  do {                                                                      \
    if ((call) != napi_ok) {                                                \
      napi_throw_error(env, "ERR_SWITCHBOARD_NAPI", "switchboard sockets addon: " #call " failed"); \
      return NULL;                                                          \
    }                                                                       \
  } while (0)

static napi_value num(napi_env env, double v) {
  napi_value out;
  if (napi_create_double(env, v, &out) != napi_ok) return NULL;
  return out;
}

static int arg_int(napi_env env, napi_value v, int32_t *out) {
  return napi_get_value_int32(env, v, out) == napi_ok ? 0 : -1;
}

static napi_value type_error(napi_env env, const char *msg) {
  napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", msg);
  return NULL;
}

/* A Unix socket address from a JS string path; -ENAMETOOLONG when it does not fit. */
static int unix_addr(napi_env env, napi_value v, struct sockaddr_un *sun, socklen_t *len) {
  size_t n = 0;
  memset(sun, 0, sizeof *sun);
  sun->sun_family = AF_UNIX;
  if (napi_get_value_string_utf8(env, v, NULL, 0, &n) != napi_ok) return -EINVAL;
  if (n >= sizeof sun->sun_path) return -ENAMETOOLONG;
  napi_get_value_string_utf8(env, v, sun->sun_path, sizeof sun->sun_path, &n);
  *len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
  return 0;
}

/* socket(domain, type, protocol) -> fd | -errno */
static napi_value js_socket(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  int32_t d, t, p;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 3 || arg_int(env, argv[0], &d) || arg_int(env, argv[1], &t) || arg_int(env, argv[2], &p)) return type_error(env, "socket(domain, type, protocol)");
  int fd = socket(d, t | SOCK_NONBLOCK | SOCK_CLOEXEC, p);
  return num(env, fd < 0 ? -errno : fd);
}

/* socketpair(domain, type, protocol) -> [fd, fd] | -errno */
static napi_value js_socketpair(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3], arr;
  int32_t d, t, p;
  int sv[2];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 3 || arg_int(env, argv[0], &d) || arg_int(env, argv[1], &t) || arg_int(env, argv[2], &p)) return type_error(env, "socketpair(domain, type, protocol)");
  if (socketpair(d, t | SOCK_NONBLOCK | SOCK_CLOEXEC, p, sv) < 0) return num(env, -errno);
  CHECK(napi_create_array_with_length(env, 2, &arr));
  CHECK(napi_set_element(env, arr, 0, num(env, sv[0])));
  CHECK(napi_set_element(env, arr, 1, num(env, sv[1])));
  return arr;
}

/* bind(fd, path) / connect(fd, path) -> 0 | -errno (Unix addresses) */
static napi_value bind_or_connect(napi_env env, napi_callback_info info, int connecting) {
  size_t argc = 2;
  napi_value argv[2];
  int32_t fd;
  struct sockaddr_un sun;
  socklen_t len;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 2 || arg_int(env, argv[0], &fd)) return type_error(env, "bind/connect(fd, path)");
  int r = unix_addr(env, argv[1], &sun, &len);
  if (r < 0) return num(env, r);
  r = connecting ? connect(fd, (struct sockaddr *)&sun, len) : bind(fd, (struct sockaddr *)&sun, len);
  return num(env, r < 0 ? -errno : 0);
}
static napi_value js_bind(napi_env env, napi_callback_info info) { return bind_or_connect(env, info, 0); }
static napi_value js_connect(napi_env env, napi_callback_info info) { return bind_or_connect(env, info, 1); }

/* bindIp(fd, ip, port) -> 0 | -errno: an IPv4 or IPv6 literal (for SO_REUSEPORT, set before bind) */
static napi_value js_bind_ip(napi_env env, napi_callback_info info) {
  size_t argc = 3, n = 0;
  napi_value argv[3];
  int32_t fd, port;
  char ip[64];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 3 || arg_int(env, argv[0], &fd) || arg_int(env, argv[2], &port) ||
      napi_get_value_string_utf8(env, argv[1], ip, sizeof ip, &n) != napi_ok) return type_error(env, "bindIp(fd, ip, port)");
  if (port < 0 || port > 65535) return num(env, -EINVAL);
  struct sockaddr_in6 s6;
  struct sockaddr_in s4;
  memset(&s6, 0, sizeof s6);
  memset(&s4, 0, sizeof s4);
  int r;
  if (inet_pton(AF_INET, ip, &s4.sin_addr) == 1) {
    s4.sin_family = AF_INET;
    s4.sin_port = htons((uint16_t)port);
    r = bind(fd, (struct sockaddr *)&s4, sizeof s4);
  } else if (inet_pton(AF_INET6, ip, &s6.sin6_addr) == 1) {
    s6.sin6_family = AF_INET6;
    s6.sin6_port = htons((uint16_t)port);
    r = bind(fd, (struct sockaddr *)&s6, sizeof s6);
  } else {
    return num(env, -EINVAL);
  }
  return num(env, r < 0 ? -errno : 0);
}

/* listen(fd, backlog) -> 0 | -errno */
static napi_value js_listen(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  int32_t fd, backlog;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 2 || arg_int(env, argv[0], &fd) || arg_int(env, argv[1], &backlog)) return type_error(env, "listen(fd, backlog)");
  return num(env, listen(fd, backlog) < 0 ? -errno : 0);
}

/* accept(fd) -> fd | -errno */
static napi_value js_accept(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  int32_t fd;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 1 || arg_int(env, argv[0], &fd)) return type_error(env, "accept(fd)");
  int c = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
  return num(env, c < 0 ? -errno : c);
}

/* shutdown(fd, how) / close(fd) -> 0 | -errno */
static napi_value js_shutdown(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  int32_t fd, how;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 2 || arg_int(env, argv[0], &fd) || arg_int(env, argv[1], &how)) return type_error(env, "shutdown(fd, how)");
  return num(env, shutdown(fd, how) < 0 ? -errno : 0);
}
static napi_value js_close(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  int32_t fd;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 1 || arg_int(env, argv[0], &fd)) return type_error(env, "close(fd)");
  return num(env, close(fd) < 0 ? -errno : 0);
}

/* dup(fd) -> a close-on-exec, non-blocking copy | -errno */
static napi_value js_dup(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  int32_t fd;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 1 || arg_int(env, argv[0], &fd)) return type_error(env, "dup(fd)");
  int c = fcntl(fd, F_DUPFD_CLOEXEC, 3);
  if (c < 0) return num(env, -errno);
  int fl = fcntl(c, F_GETFL);
  if (fl >= 0) fcntl(c, F_SETFL, fl | O_NONBLOCK);
  return num(env, c);
}

/* setsockopt(fd, level, name, bytes) -> 0 | -errno */
static napi_value js_setsockopt(napi_env env, napi_callback_info info) {
  size_t argc = 4, len = 0;
  napi_value argv[4];
  int32_t fd, level, name;
  void *data = NULL;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 4 || arg_int(env, argv[0], &fd) || arg_int(env, argv[1], &level) || arg_int(env, argv[2], &name) ||
      napi_get_buffer_info(env, argv[3], &data, &len) != napi_ok) return type_error(env, "setsockopt(fd, level, name, buffer)");
  return num(env, setsockopt(fd, level, name, data, (socklen_t)len) < 0 ? -errno : 0);
}

/* getsockopt(fd, level, name, maxlen) -> Buffer | -errno */
static napi_value js_getsockopt(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4], out;
  int32_t fd, level, name, max;
  char buf[256];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 4 || arg_int(env, argv[0], &fd) || arg_int(env, argv[1], &level) || arg_int(env, argv[2], &name) ||
      arg_int(env, argv[3], &max)) return type_error(env, "getsockopt(fd, level, name, maxlen)");
  socklen_t len = max > 0 && max < (int32_t)sizeof buf ? (socklen_t)max : (socklen_t)sizeof buf;
  memset(buf, 0, sizeof buf);
  if (getsockopt(fd, level, name, buf, &len) < 0) return num(env, -errno);
  CHECK(napi_create_buffer_copy(env, len, buf, NULL, &out));
  return out;
}

/* name(fd, peer) -> the Unix path ('' when unnamed) | -errno */
static napi_value js_name(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], out;
  int32_t fd;
  bool peer = false;
  struct sockaddr_un sun;
  socklen_t len = sizeof sun;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 2 || arg_int(env, argv[0], &fd) || napi_get_value_bool(env, argv[1], &peer) != napi_ok) return type_error(env, "name(fd, peer)");
  memset(&sun, 0, sizeof sun);
  int r = peer ? getpeername(fd, (struct sockaddr *)&sun, &len) : getsockname(fd, (struct sockaddr *)&sun, &len);
  if (r < 0) return num(env, -errno);
  size_t n = len > offsetof(struct sockaddr_un, sun_path) ? strnlen(sun.sun_path, len - offsetof(struct sockaddr_un, sun_path)) : 0;
  CHECK(napi_create_string_utf8(env, sun.sun_path, n, &out));
  return out;
}

/*
 * sendmsg(fd, data, fds, creds, flags, path) -> bytes sent | -errno
 * fds: array of descriptors for SCM_RIGHTS (empty: none); creds: true adds SCM_CREDENTIALS with
 * this process's pid, uid and gid (what the kernel checks); path: '' or a Unix destination.
 */
static napi_value js_sendmsg(napi_env env, napi_callback_info info) {
  size_t argc = 6, len = 0;
  napi_value argv[6];
  int32_t fd, flags;
  uint32_t nfds = 0;
  bool creds = false;
  void *data = NULL;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 6 || arg_int(env, argv[0], &fd) || napi_get_buffer_info(env, argv[1], &data, &len) != napi_ok ||
      napi_get_array_length(env, argv[2], &nfds) != napi_ok || napi_get_value_bool(env, argv[3], &creds) != napi_ok ||
      arg_int(env, argv[4], &flags)) return type_error(env, "sendmsg(fd, data, fds, creds, flags, path)");
  if (nfds > MAX_FDS) return num(env, -EINVAL);
  int fds[MAX_FDS];
  for (uint32_t i = 0; i < nfds; i++) {
    napi_value v;
    CHECK(napi_get_element(env, argv[2], i, &v));
    if (arg_int(env, v, &fds[i])) return type_error(env, "sendmsg: fds must be integers");
  }
  struct sockaddr_un sun;
  socklen_t sunlen = 0;
  size_t plen = 0;
  CHECK(napi_get_value_string_utf8(env, argv[5], NULL, 0, &plen));
  if (plen > 0) {
    int r = unix_addr(env, argv[5], &sun, &sunlen);
    if (r < 0) return num(env, r);
  }
  union {
    char buf[CMSG_SPACE(sizeof(int) * MAX_FDS) + CMSG_SPACE(sizeof(struct ucred))];
    struct cmsghdr align;
  } ctl;
  memset(&ctl, 0, sizeof ctl);
  struct iovec iov = { data, len };
  struct msghdr msg = { 0 };
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  if (plen > 0) {
    msg.msg_name = &sun;
    msg.msg_namelen = sunlen;
  }
  size_t ctllen = (nfds ? CMSG_SPACE(sizeof(int) * nfds) : 0) + (creds ? CMSG_SPACE(sizeof(struct ucred)) : 0);
  if (ctllen > 0) {
    msg.msg_control = ctl.buf;
    msg.msg_controllen = ctllen;
    struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
    if (nfds) {
      c->cmsg_level = SOL_SOCKET;
      c->cmsg_type = SCM_RIGHTS;
      c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
      memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
      c = CMSG_NXTHDR(&msg, c);
    }
    if (creds) {
      struct ucred u = { getpid(), getuid(), getgid() };
      c->cmsg_level = SOL_SOCKET;
      c->cmsg_type = SCM_CREDENTIALS;
      c->cmsg_len = CMSG_LEN(sizeof u);
      memcpy(CMSG_DATA(c), &u, sizeof u);
    }
  }
  ssize_t n = sendmsg(fd, &msg, flags | MSG_NOSIGNAL | MSG_DONTWAIT);
  return num(env, n < 0 ? -errno : (double)n);
}

/*
 * recvmsg(fd, maxlen, flags) -> -errno | [data, fds, creds, msg_flags, path]
 * creds: [pid, uid, gid] or null; path: the sender's Unix path ('' when unnamed).
 */
static napi_value js_recvmsg(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3], out, fdarr, credv, data;
  int32_t fd, max, flags;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 3 || arg_int(env, argv[0], &fd) || arg_int(env, argv[1], &max) || arg_int(env, argv[2], &flags)) return type_error(env, "recvmsg(fd, maxlen, flags)");
  if (max < 1) max = 1;
  if (max > MAX_RECV) max = MAX_RECV;
  char *buf = malloc((size_t)max);
  if (buf == NULL) return num(env, -ENOMEM);
  union {
    char buf[CMSG_SPACE(sizeof(int) * MAX_FDS) + CMSG_SPACE(sizeof(struct ucred))];
    struct cmsghdr align;
  } ctl;
  struct sockaddr_un sun;
  memset(&sun, 0, sizeof sun);
  struct iovec iov = { buf, (size_t)max };
  struct msghdr msg = { 0 };
  msg.msg_name = &sun;
  msg.msg_namelen = sizeof sun;
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = ctl.buf;
  msg.msg_controllen = sizeof ctl.buf;
  ssize_t n = recvmsg(fd, &msg, flags | MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
  if (n < 0) {
    int e = errno;
    free(buf);
    return num(env, -e);
  }
  if (napi_create_buffer_copy(env, (size_t)n, buf, NULL, &data) != napi_ok) {
    free(buf);
    napi_throw_error(env, "ERR_SWITCHBOARD_NAPI", "switchboard sockets addon: buffer");
    return NULL;
  }
  free(buf);
  CHECK(napi_create_array(env, &fdarr));
  CHECK(napi_get_null(env, &credv));
  uint32_t k = 0;
  for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c != NULL; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level != SOL_SOCKET) continue;
    if (c->cmsg_type == SCM_RIGHTS) {
      size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
      int *p = (int *)CMSG_DATA(c);
      for (size_t i = 0; i < count; i++) {
        int f;
        memcpy(&f, p + i, sizeof f);
        int fl = fcntl(f, F_GETFL);
        if (fl >= 0) fcntl(f, F_SETFL, fl | O_NONBLOCK);
        CHECK(napi_set_element(env, fdarr, k++, num(env, f)));
      }
    } else if (c->cmsg_type == SCM_CREDENTIALS && c->cmsg_len >= CMSG_LEN(sizeof(struct ucred))) {
      struct ucred u;
      memcpy(&u, CMSG_DATA(c), sizeof u);
      CHECK(napi_create_array_with_length(env, 3, &credv));
      CHECK(napi_set_element(env, credv, 0, num(env, u.pid)));
      CHECK(napi_set_element(env, credv, 1, num(env, u.uid)));
      CHECK(napi_set_element(env, credv, 2, num(env, u.gid)));
    }
  }
  napi_value path;
  size_t plen = msg.msg_namelen > offsetof(struct sockaddr_un, sun_path)
    ? strnlen(sun.sun_path, msg.msg_namelen - offsetof(struct sockaddr_un, sun_path)) : 0;
  CHECK(napi_create_string_utf8(env, sun.sun_path, plen, &path));
  CHECK(napi_create_array_with_length(env, 5, &out));
  CHECK(napi_set_element(env, out, 0, data));
  CHECK(napi_set_element(env, out, 1, fdarr));
  CHECK(napi_set_element(env, out, 2, credv));
  CHECK(napi_set_element(env, out, 3, num(env, msg.msg_flags)));
  CHECK(napi_set_element(env, out, 4, path));
  return out;
}

/* Poll handles: readiness of a descriptor, reported to a JS callback (status, events). */
typedef struct poller {
  uv_poll_t handle;
  napi_env env;
  napi_ref callback;
  napi_async_context actx;
  int closing;
} poller_t;

static void poller_closed(uv_handle_t *h) {
  free(h->data);
}

static void poller_close(poller_t *p) {
  if (p->closing) return;
  p->closing = 1;
  uv_poll_stop(&p->handle);
  if (p->callback) napi_delete_reference(p->env, p->callback);
  p->callback = NULL;
  if (p->actx) napi_async_destroy(p->env, p->actx);
  p->actx = NULL;
  uv_close((uv_handle_t *)&p->handle, poller_closed);
}

static void poller_teardown(void *arg) {
  poller_t *p = arg;
  poller_close(p);
}

static void poller_fired(uv_poll_t *h, int status, int events) {
  poller_t *p = h->data;
  if (p->closing || p->callback == NULL) return;
  napi_env env = p->env;
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return;
  napi_value cb, recv, argv[2], result;
  /* make_callback (its receiver must be an object): it runs the nextTick and microtask queues
     afterwards, as Node does after its own I/O callbacks. */
  napi_status s = napi_get_reference_value(env, p->callback, &cb);
  if (s == napi_ok && cb == NULL) s = napi_generic_failure;
  if (s == napi_ok) s = napi_get_global(env, &recv);
  if (s == napi_ok) s = napi_create_int32(env, status, &argv[0]);
  if (s == napi_ok) s = napi_create_int32(env, events, &argv[1]);
  if (s == napi_ok) s = napi_make_callback(env, p->actx, recv, cb, 2, argv, &result);
  if (s == napi_pending_exception) {
    napi_value exc;
    napi_get_and_clear_last_exception(env, &exc);
    napi_fatal_exception(env, exc);
  }
  napi_close_handle_scope(env, scope);
}

static void poller_finalize(napi_env env, void *data, void *hint) {
  (void)env;
  (void)data;
  (void)hint;
  /* The handle's life is pollClose()'s or the teardown hook's; nothing to do when the JS object goes. */
}

/* poll(fd, callback) -> handle (not started) */
static napi_value js_poll(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], out, name;
  int32_t fd;
  uv_loop_t *loop;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 2 || arg_int(env, argv[0], &fd)) return type_error(env, "poll(fd, callback)");
  CHECK(napi_get_uv_event_loop(env, &loop));
  poller_t *p = calloc(1, sizeof *p);
  if (p == NULL) return num(env, -ENOMEM);
  int r = uv_poll_init(loop, &p->handle, fd);
  if (r < 0) {
    free(p);
    return num(env, r);
  }
  p->handle.data = p;
  p->env = env;
  CHECK(napi_create_reference(env, argv[1], 1, &p->callback));
  CHECK(napi_create_string_utf8(env, "switchboard:sockets", NAPI_AUTO_LENGTH, &name));
  napi_value resource;
  CHECK(napi_create_object(env, &resource));
  CHECK(napi_async_init(env, resource, name, &p->actx));
  CHECK(napi_add_env_cleanup_hook(env, poller_teardown, p));
  CHECK(napi_create_external(env, p, poller_finalize, NULL, &out));
  return out;
}

static poller_t *poller_of(napi_env env, napi_value v) {
  void *p = NULL;
  if (napi_get_value_external(env, v, &p) != napi_ok) return NULL;
  return p;
}

/* pollSet(handle, events): 0 stops, else UV_READABLE (1) | UV_WRITABLE (2); -> 0 | -errno */
static napi_value js_poll_set(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  int32_t events;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  poller_t *p = argc >= 2 ? poller_of(env, argv[0]) : NULL;
  if (p == NULL || arg_int(env, argv[1], &events)) return type_error(env, "pollSet(handle, events)");
  if (p->closing) return num(env, -EBADF);
  int r = events ? uv_poll_start(&p->handle, events & (UV_READABLE | UV_WRITABLE), poller_fired) : uv_poll_stop(&p->handle);
  return num(env, r);
}

/* pollClose(handle): stops watching and frees the handle (before the descriptor is closed). */
static napi_value js_poll_close(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  poller_t *p = argc >= 1 ? poller_of(env, argv[0]) : NULL;
  if (p == NULL) return type_error(env, "pollClose(handle)");
  if (!p->closing) {
    napi_remove_env_cleanup_hook(env, poller_teardown, p);
    poller_close(p);
  }
  return NULL;
}

/* pollRef(handle, ref): whether the handle keeps the event loop alive. */
static napi_value js_poll_ref(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  bool ref = true;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  poller_t *p = argc >= 2 ? poller_of(env, argv[0]) : NULL;
  if (p == NULL || napi_get_value_bool(env, argv[1], &ref) != napi_ok) return type_error(env, "pollRef(handle, ref)");
  if (!p->closing) {
    if (ref) uv_ref((uv_handle_t *)&p->handle);
    else uv_unref((uv_handle_t *)&p->handle);
  }
  return NULL;
}

NAPI_MODULE_INIT() {
  napi_property_descriptor props[] = {
    { "socket", NULL, js_socket, NULL, NULL, NULL, napi_default, NULL },
    { "socketpair", NULL, js_socketpair, NULL, NULL, NULL, napi_default, NULL },
    { "bind", NULL, js_bind, NULL, NULL, NULL, napi_default, NULL },
    { "bindIp", NULL, js_bind_ip, NULL, NULL, NULL, napi_default, NULL },
    { "connect", NULL, js_connect, NULL, NULL, NULL, napi_default, NULL },
    { "listen", NULL, js_listen, NULL, NULL, NULL, napi_default, NULL },
    { "accept", NULL, js_accept, NULL, NULL, NULL, napi_default, NULL },
    { "shutdown", NULL, js_shutdown, NULL, NULL, NULL, napi_default, NULL },
    { "close", NULL, js_close, NULL, NULL, NULL, napi_default, NULL },
    { "dup", NULL, js_dup, NULL, NULL, NULL, napi_default, NULL },
    { "setsockopt", NULL, js_setsockopt, NULL, NULL, NULL, napi_default, NULL },
    { "getsockopt", NULL, js_getsockopt, NULL, NULL, NULL, napi_default, NULL },
    { "name", NULL, js_name, NULL, NULL, NULL, napi_default, NULL },
    { "sendmsg", NULL, js_sendmsg, NULL, NULL, NULL, napi_default, NULL },
    { "recvmsg", NULL, js_recvmsg, NULL, NULL, NULL, napi_default, NULL },
    { "poll", NULL, js_poll, NULL, NULL, NULL, napi_default, NULL },
    { "pollSet", NULL, js_poll_set, NULL, NULL, NULL, napi_default, NULL },
    { "pollClose", NULL, js_poll_close, NULL, NULL, NULL, napi_default, NULL },
    { "pollRef", NULL, js_poll_ref, NULL, NULL, NULL, napi_default, NULL },
  };
  CHECK(napi_define_properties(env, exports, sizeof props / sizeof props[0], props));
  return exports;
}
