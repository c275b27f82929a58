#ifndef CTETHER_CRC32C_H
#define CTETHER_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78) of `length` bytes at `bytes`, continuing
/// from `crc`, the finished checksum of the bytes before them (0 for none). Uses the SSE4.2 `crc32`
/// instruction when the CPU has it, else slicing-by-8 tables.
uint32_t tether_crc32c(uint32_t crc, const void *bytes, size_t length);

/// The slicing-by-8 path alone, whatever the CPU: the fallback, callable so tests reach it too.
uint32_t tether_crc32c_portable(uint32_t crc, const void *bytes, size_t length);

/// Whether `tether_crc32c` runs on the `crc32` instruction.
int tether_crc32c_hardware(void);

#endif
