/* WebSocket masking (RFC 6455 section 5.3) for long payloads, beside the native transport but not
   part of it: core hands it to the codec through transport/mask.ts, and the codec's TypeScript
   loop does the same work where this is not built. */
#include <stdint.h>
#include <string.h>
#include "mask.h"

/* mask(buf, start, end, word): XORs buf[start, end) with the 32-bit mask word (its bytes in memory
   order, already rotated to the phase of buf[start]). WebSocket unmasking of long payloads: eight
   bytes a step here against four in JavaScript's Uint32Array loop. */
napi_value switchboard_mask(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  uint8_t *data;
  size_t len;
  uint32_t start, end, word;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 4 ||
      napi_get_buffer_info(env, argv[0], (void **)&data, &len) != napi_ok ||
      napi_get_value_uint32(env, argv[1], &start) != napi_ok || napi_get_value_uint32(env, argv[2], &end) != napi_ok ||
      napi_get_value_uint32(env, argv[3], &word) != napi_ok || start > end || end > len) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "mask(buffer, start, end, word)");
    return NULL;
  }
  uint8_t m[4];
  memcpy(m, &word, 4);
  uint8_t *p = data + start, *stop = data + end;
  /* Byte steps until p is 8-aligned, rotating the mask so that it stays in phase. */
  while (p < stop && ((uintptr_t)p & 7) != 0) {
    *p++ ^= m[0];
    uint8_t t = m[0];
    m[0] = m[1], m[1] = m[2], m[2] = m[3], m[3] = t;
  }
  uint32_t w32;
  memcpy(&w32, m, 4);
  uint64_t w64 = ((uint64_t)w32 << 32) | w32;
  for (; p + 8 <= stop; p += 8) {
    uint64_t v;
    memcpy(&v, p, 8); /* one aligned load and store once compiled */
    v ^= w64;
    memcpy(p, &v, 8);
  }
  for (int k = 0; p < stop; k++) *p++ ^= m[k & 3];
  return NULL;
}
