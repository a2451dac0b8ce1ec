// libFuzzer target: bytes as a shard (plain or gzip tar) through the sample reader and the cheap
// sample checks, the code every rank runs on untrusted shards. Run with tests/fuzz/run-fuzz.
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "io.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char err[512], why[256];
    TarReader *r = tar_reader_open_memory(data, size, "fuzz.tar", err, sizeof(err));
    if (!r) return 0;
    TarSample s;
    for (int n = 0; n < 100000 && tar_reader_next(r, &s, err, sizeof(err)) == 1; n++) {
        int label, w, h;
        SampleProblem p = sample_check(&s, (size_t)1 << 20, &label, &w, &h, why, sizeof(why));
        // Touch what a consumer touches: key, text members and their terminating NULs.
        volatile size_t sink = strlen(s.key) + strlen(sample_problem_name(p));
        if (s.caption) sink += strlen(s.caption) + (size_t)s.caption[s.caption_len];
        if (s.json) sink += (size_t)s.json[s.json_len];
        if (s.cls) sink += (size_t)s.cls[s.cls_len];
        if (s.image && s.image_len) sink += s.image[0] + s.image[s.image_len - 1];
        (void)sink;
    }
    tar_reader_close(r);
    return 0;
}
