// libFuzzer target: the INI parser on arbitrary text. Checked: a failed parse leaves the config
// untouched and names the input and a line; a successful one round-trips — config_to_ini, loaded
// again, gives the same text; typed getters never crash on any value.
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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *text = malloc(size + 1);
    if (!text) return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    TjConfig *cfg = config_new();
    config_set(cfg, "sentinel", "key", "value");
    char err[512] = "";
    if (config_load_string(cfg, text, "fuzz.ini", err, sizeof(err))) {
        CHECK(!strncmp(err, "fuzz.ini:", 9));
        char *ini = config_to_ini(cfg);
        CHECK(!strcmp(ini, "[sentinel]\nkey = value\n"));
        free(ini);
    } else {
        char *ini = config_to_ini(cfg);
        TjConfig *back = config_new();
        if (config_load_string(back, ini, "round-trip", err, sizeof(err))) {
            fprintf(stderr, "to_ini output does not parse: %s\n---\n%s---\n", err, ini);
            abort();
        }
        char *again = config_to_ini(back);
        if (strcmp(ini, again)) {
            fprintf(stderr, "round trip differs:\n---\n%s---\n%s---\n", ini, again);
            abort();
        }
        // Any value through every getter: an answer or an error, never a crash.
        const char *sections[] = {"sentinel", "a", "run", "data", "train"};
        const char *keys[] = {"key", "x", "seed", "lr", "steps", "b"};
        for (int s = 0; s < 5; s++)
            for (int k = 0; k < 6; k++) {
                long l;
                double d;
                int b;
                config_get_int(back, sections[s], keys[k], 0, &l, err, sizeof(err));
                config_get_double(back, sections[s], keys[k], 0, &d, err, sizeof(err));
                config_get_bool(back, sections[s], keys[k], 0, &b, err, sizeof(err));
            }
        free(again);
        free(ini);
        config_free(back);
    }
    config_free(cfg);
    free(text);
    return 0;
}
