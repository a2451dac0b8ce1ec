// Counter-based random numbers: a generator is keyed by integers (seed, stream, a, b), so masks,
// negatives and initialisation never depend on the rank that draws them.
#include <math.h>

#include "model.h"

static uint64_t splitmix64(uint64_t x) {
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

void rng_init(Rng *rng, uint64_t seed, uint64_t stream, uint64_t a, uint64_t b) {
    uint64_t h = splitmix64(seed);
    h = splitmix64(h ^ stream);
    h = splitmix64(h ^ a);
    h = splitmix64(h ^ b);
    rng->state = h;
}

uint64_t rng_next(Rng *rng) {
    rng->state += 0x9E3779B97F4A7C15ull;
    uint64_t x = rng->state;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

float rng_uniform(Rng *rng) {
    return (float)(rng_next(rng) >> 40) * (1.0f / 16777216.0f); // 24 random bits
}

float rng_normal(Rng *rng) {
    // Box–Muller in double; u1 in (0, 1] so the log is finite.
    double u1 = ((double)(rng_next(rng) >> 11) + 1.0) * (1.0 / 9007199254740992.0);
    double u2 = (double)(rng_next(rng) >> 11) * (1.0 / 9007199254740992.0);
    return (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}
