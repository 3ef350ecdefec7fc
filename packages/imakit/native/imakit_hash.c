/*
 * imakit_hash: one-shot SHA-1/SHA-2 of a byte range into a caller's buffer, for measurement-list
 * replay (src/host/native-hash.ts). Replay hashes about 100 bytes four times per entry (template
 * digest and PCR extend, two banks); node:crypto costs 1-2 µs per call in OpenSSL 3 method
 * fetching and allocation, the tuned TypeScript (src/core/ima-list/fast-hash.ts) 0.25-0.65 µs.
 * This addon calls the OpenSSL that Node itself links (its exported symbols, headers shipped with
 * Node) through the low-level SHA*_Init/Update/Final functions, which use the CPU's SHA extensions
 * and skip the EVP fetch: about 0.18 µs per call including the N-API boundary (bench/list-replay.ts).
 * The one-shot SHA256() of OpenSSL 3 is NOT used: it goes through EVP_Q_digest and is as slow as
 * node:crypto.
 *
 * hashInto(alg, src, off, len, out, outOff)
 * hash2Into(alg, a, aOff, aLen, b, bOff, bLen, out, outOff)   H(a[aOff..+aLen) ‖ b[bOff..+bLen))
 * hashSpansInto(alg, src, spans, count, out, outOff)  many one-shot hashes in one call (below)
 * extendChainInto(alg, pcrs, pcrOff, values, valuesOff, count, trace, traceOff)  a run of extends
 *   alg: 1 sha1, 2 sha256, 3 sha384, 4 sha512. Buffers are Uint8Arrays; every range is checked
 *   against its buffer before anything is read or written (RangeError otherwise). The digest is
 *   written after all input is read, so `out` may overlap the input (an in-place PCR extend).
 */
#define OPENSSL_SUPPRESS_DEPRECATED
#include <stdint.h>
#include <string.h>

#include <node_api.h>
#include <openssl/sha.h>

typedef union {
  SHA_CTX sha1;
  SHA256_CTX sha256;
  SHA512_CTX sha512;
} hash_ctx;

static const int digest_size[] = {0, 20, 32, 48, 64};

static void h_init(int alg, hash_ctx *c) {
  switch (alg) {
    case 1: SHA1_Init(&c->sha1); break;
    case 2: SHA256_Init(&c->sha256); break;
    case 3: SHA384_Init(&c->sha512); break;
    default: SHA512_Init(&c->sha512); break;
  }
}

static void h_update(int alg, hash_ctx *c, const uint8_t *p, size_t n) {
  switch (alg) {
    case 1: SHA1_Update(&c->sha1, p, n); break;
    case 2: SHA256_Update(&c->sha256, p, n); break;
    case 3: SHA384_Update(&c->sha512, p, n); break;
    default: SHA512_Update(&c->sha512, p, n); break;
  }
}

static void h_final(int alg, hash_ctx *c, uint8_t *out) {
  switch (alg) {
    case 1: SHA1_Final(out, &c->sha1); break;
    case 2: SHA256_Final(out, &c->sha256); break;
    case 3: SHA384_Final(out, &c->sha512); break;
    default: SHA512_Final(out, &c->sha512); break;
  }
}

/* A Uint8Array argument: its bytes and length; 0 (with a TypeError thrown) otherwise. */
static int bytes_arg(napi_env env, napi_value v, uint8_t **p, size_t *n) {
  napi_typedarray_type t;
  size_t len;
  void *data;
  napi_value ab;
  size_t bo;
  if (napi_get_typedarray_info(env, v, &t, &len, &data, &ab, &bo) != napi_ok || t != napi_uint8_array) {
    napi_throw_type_error(env, NULL, "expected a Uint8Array");
    return 0;
  }
  *p = data;
  *n = len;
  return 1;
}

/* A non-negative int32 argument; 0 (with an error thrown) otherwise. */
static int uint_arg(napi_env env, napi_value v, int64_t *x) {
  int32_t i;
  if (napi_get_value_int32(env, v, &i) != napi_ok) {
    napi_throw_type_error(env, NULL, "expected an integer");
    return 0;
  }
  if (i < 0) {
    napi_throw_range_error(env, NULL, "negative offset or length");
    return 0;
  }
  *x = i;
  return 1;
}

static int alg_arg(napi_env env, napi_value v, int *alg) {
  int32_t i;
  if (napi_get_value_int32(env, v, &i) != napi_ok || i < 1 || i > 4) {
    napi_throw_range_error(env, NULL, "unknown hash algorithm");
    return 0;
  }
  *alg = i;
  return 1;
}

/* (buffer, off, len) at argv[k..k+2]: the range, checked against the buffer. */
static int range_arg(napi_env env, napi_value *argv, const uint8_t **p, int64_t *len) {
  uint8_t *b;
  size_t n;
  int64_t off;
  if (!bytes_arg(env, argv[0], &b, &n) || !uint_arg(env, argv[1], &off) || !uint_arg(env, argv[2], len))
    return 0;
  if (off + *len > (int64_t)n) {
    napi_throw_range_error(env, NULL, "input range outside its buffer");
    return 0;
  }
  *p = b + off;
  return 1;
}

/* (out, outOff) at argv[k..k+1]: room for `size` bytes. */
static int out_arg(napi_env env, napi_value *argv, int size, uint8_t **p) {
  uint8_t *b;
  size_t n;
  int64_t off;
  if (!bytes_arg(env, argv[0], &b, &n) || !uint_arg(env, argv[1], &off)) return 0;
  if (off + size > (int64_t)n) {
    napi_throw_range_error(env, NULL, "output range outside its buffer");
    return 0;
  }
  *p = b + off;
  return 1;
}

static napi_value hash_into(napi_env env, napi_callback_info info) {
  size_t argc = 6;
  napi_value argv[6];
  int alg;
  const uint8_t *src;
  int64_t len;
  uint8_t *out;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 6) {
    napi_throw_type_error(env, NULL, "hashInto(alg, src, off, len, out, outOff)");
    return NULL;
  }
  if (!alg_arg(env, argv[0], &alg) || !range_arg(env, argv + 1, &src, &len) ||
      !out_arg(env, argv + 4, digest_size[alg], &out))
    return NULL;
  hash_ctx c;
  h_init(alg, &c);
  h_update(alg, &c, src, (size_t)len);
  h_final(alg, &c, out);
  return NULL;
}

static napi_value hash2_into(napi_env env, napi_callback_info info) {
  size_t argc = 9;
  napi_value argv[9];
  int alg;
  const uint8_t *a, *b;
  int64_t alen, blen;
  uint8_t *out;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 9) {
    napi_throw_type_error(env, NULL, "hash2Into(alg, a, aOff, aLen, b, bOff, bLen, out, outOff)");
    return NULL;
  }
  if (!alg_arg(env, argv[0], &alg) || !range_arg(env, argv + 1, &a, &alen) ||
      !range_arg(env, argv + 4, &b, &blen) || !out_arg(env, argv + 7, digest_size[alg], &out))
    return NULL;
  hash_ctx c;
  h_init(alg, &c);
  h_update(alg, &c, a, (size_t)alen);
  h_update(alg, &c, b, (size_t)blen);
  h_final(alg, &c, out);
  return NULL;
}

/*
 * hashSpansInto(alg, src, spans, count, out, outOff): for i < count, the digest of
 * src[spans[2i] .. +spans[2i+1]) into out[outOff + i*size ..); a span of negative length is skipped
 * (its output left as it was). One call for a chunk's entries: the N-API boundary costs more than
 * hashing an entry (about 0.15 of hashInto's 0.2 µs). Every span and the output are checked before
 * anything is hashed.
 */
static napi_value hash_spans_into(napi_env env, napi_callback_info info) {
  size_t argc = 6;
  napi_value argv[6];
  int alg;
  uint8_t *src, *out;
  size_t srcLen, outLen;
  int64_t count, outOff;
  napi_typedarray_type t;
  size_t spanCount;
  void *spanData;
  napi_value ab;
  size_t bo;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 6) {
    napi_throw_type_error(env, NULL, "hashSpansInto(alg, src, spans, count, out, outOff)");
    return NULL;
  }
  if (!alg_arg(env, argv[0], &alg) || !bytes_arg(env, argv[1], &src, &srcLen)) return NULL;
  if (napi_get_typedarray_info(env, argv[2], &t, &spanCount, &spanData, &ab, &bo) != napi_ok ||
      t != napi_int32_array) {
    napi_throw_type_error(env, NULL, "expected an Int32Array of spans");
    return NULL;
  }
  if (!uint_arg(env, argv[3], &count) || !bytes_arg(env, argv[4], &out, &outLen) ||
      !uint_arg(env, argv[5], &outOff))
    return NULL;
  const int32_t *spans = spanData;
  const int size = digest_size[alg];
  if ((int64_t)spanCount < 2 * count || outOff + count * size > (int64_t)outLen) {
    napi_throw_range_error(env, NULL, "spans or output shorter than count");
    return NULL;
  }
  for (int64_t i = 0; i < count; i++) {
    int64_t off = spans[2 * i], len = spans[2 * i + 1];
    if (len >= 0 && (off < 0 || off + len > (int64_t)srcLen)) {
      napi_throw_range_error(env, NULL, "input range outside its buffer");
      return NULL;
    }
  }
  for (int64_t i = 0; i < count; i++) {
    int64_t len = spans[2 * i + 1];
    if (len < 0) continue;
    hash_ctx c;
    h_init(alg, &c);
    h_update(alg, &c, src + spans[2 * i], (size_t)len);
    h_final(alg, &c, out + outOff + i * size);
  }
  return NULL;
}

/*
 * extendChainInto(alg, pcrs, pcrOff, values, valuesOff, count, trace, traceOff): extend one PCR
 * with `count` values in turn, pcr = H(pcr ‖ values[i]), writing each value the PCR takes into
 * trace[traceOff + i*size ..) (replay compares every one with the expected PCR). One call for a run
 * of a chunk's entries into the same PCR instead of one call per entry. Ranges checked first.
 */
static napi_value extend_chain_into(napi_env env, napi_callback_info info) {
  size_t argc = 8;
  napi_value argv[8];
  int alg;
  uint8_t *pcrs, *values, *trace;
  size_t pcrsLen, valuesLen, traceLen;
  int64_t pcrOff, valuesOff, count, traceOff;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 8) {
    napi_throw_type_error(env, NULL, "extendChainInto(alg, pcrs, pcrOff, values, valuesOff, count, trace, traceOff)");
    return NULL;
  }
  if (!alg_arg(env, argv[0], &alg) || !bytes_arg(env, argv[1], &pcrs, &pcrsLen) ||
      !uint_arg(env, argv[2], &pcrOff) || !bytes_arg(env, argv[3], &values, &valuesLen) ||
      !uint_arg(env, argv[4], &valuesOff) || !uint_arg(env, argv[5], &count) ||
      !bytes_arg(env, argv[6], &trace, &traceLen) || !uint_arg(env, argv[7], &traceOff))
    return NULL;
  const int size = digest_size[alg];
  if (pcrOff + size > (int64_t)pcrsLen || valuesOff + count * size > (int64_t)valuesLen ||
      traceOff + count * size > (int64_t)traceLen) {
    napi_throw_range_error(env, NULL, "PCR, values or trace range outside its buffer");
    return NULL;
  }
  uint8_t *pcr = pcrs + pcrOff;
  for (int64_t i = 0; i < count; i++) {
    hash_ctx c;
    h_init(alg, &c);
    h_update(alg, &c, pcr, (size_t)size);
    h_update(alg, &c, values + valuesOff + i * size, (size_t)size);
    h_final(alg, &c, pcr);
    memcpy(trace + traceOff + i * size, pcr, (size_t)size);
  }
  return NULL;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"hashInto", NULL, hash_into, NULL, NULL, NULL, napi_enumerable, NULL},
      {"hash2Into", NULL, hash2_into, NULL, NULL, NULL, napi_enumerable, NULL},
      {"hashSpansInto", NULL, hash_spans_into, NULL, NULL, NULL, napi_enumerable, NULL},
      {"extendChainInto", NULL, extend_chain_into, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  if (napi_define_properties(env, exports, sizeof props / sizeof props[0], props) != napi_ok) return NULL;
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
