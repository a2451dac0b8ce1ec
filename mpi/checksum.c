// Cross-rank parameter checksum: detects replicas that stopped being identical.
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "dist.h"

// A bijective 64-bit mixer (the splitmix64 finaliser): distinct inputs give distinct outputs.
static inline uint64_t mix64(uint64_t x) {
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    x ^= x >> 31;
    return x;
}

// Sum over 8-byte words of mix(word + position·φ). Because mix is a bijection, changing any one
// word always changes the sum; several changes cancel only with probability about 2^-64. A sum
// (rather than a chain) keeps the loop free of dependencies, so it runs near memory speed.
uint64_t dist_hash_floats(const float *x, size_t n) {
    const uint64_t phi = 0x9e3779b97f4a7c15ULL;
    const char *bytes = (const char *)x;
    size_t words = n / 2;
    uint64_t sum = 0;
    for (size_t i = 0; i < words; i++) {
        uint64_t w;
        memcpy(&w, bytes + 8 * i, 8);
        sum += mix64(w + (i + 1) * phi);
    }
    if (n & 1) {
        uint32_t last;
        memcpy(&last, bytes + 8 * words, 4);
        sum += mix64((uint64_t)last + (words + 1) * phi);
    }
    return mix64(sum ^ (uint64_t)n);
}

int dist_check_replicas(Dist *d, const float *params, size_t n, long step) {
    uint64_t mine = dist_hash_floats(params, n);
    DIST_CHECK(MPI_Allgather(&mine, 1, MPI_UINT64_T, d->u64, 1, MPI_UINT64_T, MPI_COMM_WORLD));
    int differ = 0;
    for (int r = 1; r < d->world; r++)
        differ += d->u64[r] != d->u64[0];
    if (!differ || d->rank != 0) return differ;

    // Rank 0 says which ranks hold which checksum: one group per distinct value, in rank order.
    char msg[2048];
    size_t len = (size_t)snprintf(msg, sizeof msg,
                                  "step %ld: parameter replicas differ (%d of %d ranks differ "
                                  "from rank 0):",
                                  step, differ, d->world);
    for (int r = 0; r < d->world && len < sizeof msg; r++) {
        int first_of_group = 1;
        for (int q = 0; q < r; q++)
            if (d->u64[q] == d->u64[r]) first_of_group = 0;
        if (!first_of_group) continue;
        len += (size_t)snprintf(msg + len, sizeof msg - len, " checksum %016" PRIx64 " on ranks",
                                d->u64[r]);
        int shown = 0;
        for (int q = r; q < d->world && len < sizeof msg; q++) {
            if (d->u64[q] != d->u64[r]) continue;
            if (shown == 16) {
                len += (size_t)snprintf(msg + len, sizeof msg - len, " ...");
                break;
            }
            len += (size_t)snprintf(msg + len, sizeof msg - len, "%s %d", shown ? "," : "", q);
            shown++;
        }
        if (len < sizeof msg) len += (size_t)snprintf(msg + len, sizeof msg - len, ";");
    }
    fprintf(stderr, "tijepa: rank %d (%s): %s\n", d->rank, d->hostname, msg);
    fflush(stderr);
    return differ;
}
