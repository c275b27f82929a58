// CRC-32C over the SSE4.2 `crc32` instruction, three streams interleaved, with a portable
// slicing-by-8 fallback. The structure follows Mark Adler's crc32c.c (zlib licence, 2013–2015):
// the instruction has a 3-cycle latency and a throughput of one per cycle, so one dependent chain
// of 8-byte steps reaches a third of what the unit can do; three independent chains over adjacent
// blocks fill it, and their results are joined by the linearity of the CRC,
//     crc(A ‖ B) = shift(crc(A), |B|) ⊕ crc₀(B),
// where shift multiplies by x^(8|B|) modulo the polynomial, here by table lookup.

#include "CTetherCRC32C.h"

#include <pthread.h>
#include <string.h>

#if defined(__x86_64__)
#include <cpuid.h>
#include <nmmintrin.h>
#endif

#define POLY 0x82f63b78u

/// Block lengths of the interleaved streams: LONG amortises the two shifts per 3·LONG bytes, SHORT
/// serves buffers between 3·SHORT and 3·LONG.
#define LONG 8192
#define SHORT 256

static uint32_t slice8[8][256];
static uint32_t shiftLong[4][256];
static uint32_t shiftShort[4][256];
static int hasSSE42;
static pthread_once_t once = PTHREAD_ONCE_INIT;

/// The GF(2) 32×32 matrix `mat` (columns) times the vector `vec`.
static uint32_t gf2Times(const uint32_t *mat, uint32_t vec) {
    uint32_t sum = 0;
    for (; vec; vec >>= 1, mat++)
        if (vec & 1) sum ^= *mat;
    return sum;
}

static void gf2Square(uint32_t *square, const uint32_t *mat) {
    for (int n = 0; n < 32; n++) square[n] = gf2Times(mat, mat[n]);
}

/// The operator that feeds `length` zero bytes (a power of two) into a CRC register, by repeated
/// squaring of the one-zero-bit operator.
static void zerosOperator(uint32_t *even, size_t length) {
    uint32_t odd[32];
    odd[0] = POLY;
    for (int n = 1; n < 32; n++) odd[n] = 1u << (n - 1);
    gf2Square(even, odd);  // 2 bits
    gf2Square(odd, even);  // 4 bits
    for (;;) {
        gf2Square(even, odd);
        length >>= 1;
        if (length == 0) return;
        gf2Square(odd, even);
        length >>= 1;
        if (length == 0) break;
    }
    memcpy(even, odd, sizeof odd);
}

/// The zeros operator applied to each byte position of a register, as four 256-entry tables.
static void zerosTables(uint32_t zeros[4][256], size_t length) {
    uint32_t op[32];
    zerosOperator(op, length);
    for (uint32_t n = 0; n < 256; n++)
        for (int k = 0; k < 4; k++) zeros[k][n] = gf2Times(op, n << (8 * k));
}

static inline uint32_t shift(uint32_t zeros[4][256], uint32_t crc) {
    return zeros[0][crc & 0xff] ^ zeros[1][(crc >> 8) & 0xff] ^ zeros[2][(crc >> 16) & 0xff] ^ zeros[3][crc >> 24];
}

static void initialise(void) {
    for (uint32_t n = 0; n < 256; n++) {
        uint32_t c = n;
        for (int k = 0; k < 8; k++) c = c & 1 ? (c >> 1) ^ POLY : c >> 1;
        slice8[0][n] = c;
    }
    for (int n = 0; n < 256; n++)
        for (int k = 1; k < 8; k++) slice8[k][n] = (slice8[k - 1][n] >> 8) ^ slice8[0][slice8[k - 1][n] & 0xff];
    zerosTables(shiftLong, LONG);
    zerosTables(shiftShort, SHORT);
#if defined(__x86_64__)
    unsigned eax, ebx, ecx, edx;
    hasSSE42 = __get_cpuid(1, &eax, &ebx, &ecx, &edx) && (ecx & bit_SSE4_2);
#endif
}

static inline uint64_t load64(const unsigned char *p) {
    uint64_t word;
    memcpy(&word, p, 8);
    return word;
}

/// Slicing-by-8 (Kounavis & Berry, Intel 2005): eight table lookups per 8-byte little-endian word.
static uint32_t portable(uint32_t crc, const unsigned char *next, size_t length) {
    while (length && ((uintptr_t)next & 7)) {
        crc = slice8[0][(crc ^ *next++) & 0xff] ^ (crc >> 8);
        length--;
    }
    for (; length >= 8; next += 8, length -= 8) {
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
        uint64_t word = load64(next) ^ crc;
#else
        uint64_t word = __builtin_bswap64(load64(next)) ^ crc;
#endif
        crc = slice8[7][word & 0xff] ^ slice8[6][(word >> 8) & 0xff] ^ slice8[5][(word >> 16) & 0xff] ^
              slice8[4][(word >> 24) & 0xff] ^ slice8[3][(word >> 32) & 0xff] ^ slice8[2][(word >> 40) & 0xff] ^
              slice8[1][(word >> 48) & 0xff] ^ slice8[0][word >> 56];
    }
    while (length--) crc = slice8[0][(crc ^ *next++) & 0xff] ^ (crc >> 8);
    return crc;
}

#if defined(__x86_64__)
/// Three `crc32` chains over adjacent blocks of `block` bytes, joined by `zeros` (the shift by one
/// block): each round consumes 3·block bytes.
__attribute__((target("sse4.2"))) static inline uint64_t interleaved(
    uint64_t crc0, const unsigned char **next, size_t *length, size_t block, uint32_t zeros[4][256]) {
    while (*length >= 3 * block) {
        uint64_t crc1 = 0, crc2 = 0;
        const unsigned char *p = *next, *end = p + block;
        do {
            crc0 = _mm_crc32_u64(crc0, load64(p));
            crc1 = _mm_crc32_u64(crc1, load64(p + block));
            crc2 = _mm_crc32_u64(crc2, load64(p + 2 * block));
            p += 8;
        } while (p < end);
        crc0 = shift(zeros, (uint32_t)crc0) ^ crc1;
        crc0 = shift(zeros, (uint32_t)crc0) ^ crc2;
        *next += 3 * block;
        *length -= 3 * block;
    }
    return crc0;
}

__attribute__((target("sse4.2"))) static uint32_t hardware(uint32_t crc, const unsigned char *next, size_t length) {
    uint64_t crc0 = crc;
    while (length && ((uintptr_t)next & 7)) {
        crc0 = _mm_crc32_u8((uint32_t)crc0, *next++);
        length--;
    }
    crc0 = interleaved(crc0, &next, &length, LONG, shiftLong);
    crc0 = interleaved(crc0, &next, &length, SHORT, shiftShort);
    for (; length >= 8; next += 8, length -= 8) crc0 = _mm_crc32_u64(crc0, load64(next));
    while (length--) crc0 = _mm_crc32_u8((uint32_t)crc0, *next++);
    return (uint32_t)crc0;
}
#endif

uint32_t tether_crc32c(uint32_t crc, const void *bytes, size_t length) {
    pthread_once(&once, initialise);
#if defined(__x86_64__)
    if (hasSSE42) return ~hardware(~crc, bytes, length);
#endif
    return ~portable(~crc, bytes, length);
}

uint32_t tether_crc32c_portable(uint32_t crc, const void *bytes, size_t length) {
    pthread_once(&once, initialise);
    return ~portable(~crc, bytes, length);
}

int tether_crc32c_hardware(void) {
    pthread_once(&once, initialise);
    return hasSSE42;
}
