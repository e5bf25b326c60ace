/* The WebSocket XOR loop (mask.c): an optional helper that the transport's module offers beside
   itself; it knows nothing of sockets, and the transport nothing of WebSocket. */
#ifndef SWITCHBOARD_MASK_H
#define SWITCHBOARD_MASK_H
#include <node_api.h>

/* mask(buffer, start, end, word) from JavaScript; see mask.c. */
napi_value switchboard_mask(napi_env env, napi_callback_info info);

#endif
