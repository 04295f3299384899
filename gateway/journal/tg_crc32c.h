/* tg_crc32c: CRC-32C (Castagnoli), the checksum on every journal record.
 * Chosen over CRC-32 for its better error detection on storage-sized
 * blocks; it detects every burst of 32 bits or fewer, so one flipped byte
 * anywhere in a record is always caught. Table-driven (slicing by 8):
 * the tables are built once, thread-safely, on first use. */
#ifndef TG_CRC32C_H
#define TG_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* Continues a CRC: pass 0 to start; tg_crc32c(tg_crc32c(0, a), b) equals
 * the CRC of a followed by b. */
uint32_t tg_crc32c(uint32_t crc, const void *data, size_t n);

#endif
