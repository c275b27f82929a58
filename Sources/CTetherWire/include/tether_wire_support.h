#ifndef TETHER_WIRE_SUPPORT_H
#define TETHER_WIRE_SUPPORT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// XXH64 (Yann Collet's xxHash, 64-bit variant) of `length` bytes: the checksum of each raw
/// weights frame. Fast enough (~10 GB/s) that verifying a broadcast costs little next to moving it.
uint64_t tether_xxh64(const void *data, size_t length, uint64_t seed);

/// True when all `count` floats are finite (no NaN, no ±inf).
int tether_all_finite_f32(const float *values, size_t count);

/// A non-blocking eventfd (Linux) that wakes a socket owner thread blocked in zmq_poll.
int tether_wake_fd(void);

#ifdef __cplusplus
}
#endif

#endif
