// io/ private: the splitmix64 generator behind the stream's shuffles and the synthetic dataset.
// Both key a state by mixing seed and indices, then draw with io_rng_next. Not part of io.h.
#ifndef TIJEPA_IO_RNG_INTERNAL_H
#define TIJEPA_IO_RNG_INTERNAL_H

#include <stdint.h>

typedef struct {
    uint64_t s;
} IoRng;

// splitmix64 finaliser
static inline uint64_t io_mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

static inline uint64_t io_rng_next(IoRng *r) {
    r->s += 0x9E3779B97F4A7C15ULL;
    return io_mix64(r->s);
}

#endif // TIJEPA_IO_RNG_INTERNAL_H
