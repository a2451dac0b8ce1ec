// libFuzzer target: image_decode on arbitrary bytes (PNG and JPEG paths, libpng/libjpeg error
// recovery through setjmp), then resize + normalise and a PNG re-encode round trip of whatever
// decoded. Checked: failures name the input; decoded sizes respect the pixel limit; the tensor
// is finite; png_encode → image_decode gives back the same pixels.
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io.h"

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);               \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

#define MAX_PIXELS (1u << 20)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    ImageU8 img;
    char err[512] = "";
    if (image_decode(&img, data, size, MAX_PIXELS, "fuzz-input", err, sizeof(err))) {
        CHECK(strstr(err, "fuzz-input"));
        CHECK(img.rgb == NULL);
        return 0;
    }
    CHECK(img.width > 0 && img.height > 0);
    CHECK((size_t)img.width * (size_t)img.height <= MAX_PIXELS);
    static float out[3 * 24 * 24];
    image_to_tensor(out, &img, 24, IMAGE_MEAN_IMAGENET, IMAGE_STD_IMAGENET);
    for (size_t i = 0; i < sizeof(out) / sizeof(out[0]); i++)
        CHECK(isfinite(out[i]));
    if ((size_t)img.width * (size_t)img.height <= 65536) {
        uint8_t *png;
        size_t len;
        CHECK(png_encode(&png, &len, img.rgb, img.width, img.height, err, sizeof(err)) == 0);
        ImageU8 back;
        CHECK(image_decode(&back, png, len, MAX_PIXELS, "re-encoded", err, sizeof(err)) == 0);
        CHECK(back.width == img.width && back.height == img.height);
        CHECK(!memcmp(back.rgb, img.rgb, (size_t)img.width * img.height * 3));
        image_free(&back);
        free(png);
    }
    image_free(&img);
    return 0;
}
