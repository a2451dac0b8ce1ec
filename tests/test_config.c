// INI configs: parsing, comments, quoting, overrides, typed getters and their errors, syntax
// errors naming file and line, and the config_to_ini round trip.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "io.h"

static char tmpdir[] = "/tmp/tijepa_test_config_XXXXXX";

static void write_config(char *path, size_t n, const char *name, const char *text) {
    snprintf(path, n, "%s/%s", tmpdir, name);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    fputs(text, f);
    assert_int_equal(fclose(f), 0);
}

static const char *EXAMPLE = "\xEF\xBB\xBF# a run\n"
                             "; another comment style\n"
                             "[run]\n"
                             "name = tiny-synth\n"
                             "seed=7\n"
                             "  dir =  runs/tiny   # trailing comment\n"
                             "\n"
                             "[data]\r\n"
                             "train = data/train-{000000..000009}.tar\r\n"
                             "split = sample ; comment\n"
                             "hash = a#b;c\n"
                             "quoted = \"  spaces # kept ; too \\\"q\\\" \\\\ \"   # comment\n"
                             "empty =\n"
                             "[ optim ]\n"
                             "lr = 1.5e-3\n"
                             "clip_grad = 0\n"
                             "[run]\n"
                             "seed = 8\n"
                             "[probe.mvsa]\n"
                             "ok = yes\n";

static TjConfig *load_example(void) {
    char path[512], err[512];
    write_config(path, sizeof(path), "example.ini", EXAMPLE);
    TjConfig *cfg = config_new();
    if (config_load_file(cfg, path, err, sizeof(err))) fail_msg("%s", err);
    return cfg;
}

static void test_parse(void **state) {
    (void)state;
    TjConfig *cfg = load_example();
    assert_string_equal(config_get(cfg, "run", "name"), "tiny-synth");
    assert_string_equal(config_get(cfg, "run", "seed"), "8"); // the later value wins
    assert_string_equal(config_get(cfg, "run", "dir"), "runs/tiny");
    assert_string_equal(config_get(cfg, "data", "train"), "data/train-{000000..000009}.tar");
    assert_string_equal(config_get(cfg, "data", "split"), "sample");
    assert_string_equal(config_get(cfg, "data", "hash"), "a#b;c"); // no blank before '#'
    assert_string_equal(config_get(cfg, "data", "quoted"), "  spaces # kept ; too \"q\" \\ ");
    assert_string_equal(config_get(cfg, "data", "empty"), "");
    assert_string_equal(config_get(cfg, "optim", "lr"), "1.5e-3");
    assert_string_equal(config_get(cfg, "probe.mvsa", "ok"), "yes");
    assert_null(config_get(cfg, "run", "missing"));
    assert_null(config_get(cfg, "nosection", "name"));
    config_free(cfg);
}

static void test_typed_getters(void **state) {
    (void)state;
    TjConfig *cfg = load_example();
    char err[512];
    long l = 0;
    double d = 0;
    int b = -1;
    assert_int_equal(config_get_int(cfg, "run", "seed", 0, &l, err, sizeof(err)), 0);
    assert_int_equal(l, 8);
    assert_int_equal(config_get_int(cfg, "train", "steps", 123, &l, err, sizeof(err)), 0);
    assert_int_equal(l, 123);
    assert_int_equal(config_get_double(cfg, "optim", "lr", 0, &d, err, sizeof(err)), 0);
    assert_true(d == 1.5e-3);
    assert_int_equal(config_get_double(cfg, "optim", "wd", 0.04, &d, err, sizeof(err)), 0);
    assert_true(d == 0.04);
    assert_int_equal(config_get_bool(cfg, "probe.mvsa", "ok", 0, &b, err, sizeof(err)), 0);
    assert_int_equal(b, 1);
    assert_int_equal(config_get_bool(cfg, "optim", "clip_grad", 1, &b, err, sizeof(err)), 0);
    assert_int_equal(b, 0);
    assert_int_equal(config_get_bool(cfg, "x", "y", 1, &b, err, sizeof(err)), 0);
    assert_int_equal(b, 1);
    const char *bools[] = {"TRUE", "Yes", "on", "1", "false", "NO", "Off", "0"};
    for (int i = 0; i < 8; i++) {
        config_set(cfg, "t", "b", bools[i]);
        assert_int_equal(config_get_bool(cfg, "t", "b", -1, &b, err, sizeof(err)), 0);
        assert_int_equal(b, i < 4);
    }

    // Malformed values: errors name section.key, the value and where it came from.
    config_set(cfg, "train", "steps", "12x");
    assert_int_not_equal(config_get_int(cfg, "train", "steps", 0, &l, err, sizeof(err)), 0);
    assert_non_null(strstr(err, "train.steps"));
    assert_non_null(strstr(err, "'12x'"));
    assert_non_null(strstr(err, "integer"));
    config_set(cfg, "train", "steps", "99999999999999999999999");
    assert_int_not_equal(config_get_int(cfg, "train", "steps", 0, &l, err, sizeof(err)), 0);
    const char *bad_ints[] = {"", " 5", "0x10", "1.0", "1e3"};
    for (int i = 0; i < 5; i++) {
        config_set(cfg, "train", "steps", bad_ints[i]);
        assert_int_not_equal(config_get_int(cfg, "train", "steps", 0, &l, err, sizeof(err)), 0);
    }
    config_set(cfg, "train", "steps", "-42");
    assert_int_equal(config_get_int(cfg, "train", "steps", 0, &l, err, sizeof(err)), 0);
    assert_int_equal(l, -42);
    const char *bad_doubles[] = {"", "abc", "1.0.0", "nan", "inf", "1e999", "1,5"};
    for (int i = 0; i < 7; i++) {
        config_set(cfg, "optim", "lr", bad_doubles[i]);
        assert_int_not_equal(config_get_double(cfg, "optim", "lr", 0, &d, err, sizeof(err)), 0);
        assert_non_null(strstr(err, "optim.lr"));
    }
    config_set(cfg, "t", "b", "maybe");
    assert_int_not_equal(config_get_bool(cfg, "t", "b", 0, &b, err, sizeof(err)), 0);
    assert_non_null(strstr(err, "t.b"));
    assert_non_null(strstr(err, "'maybe'"));

    // A bad value loaded from a file names file and line.
    char path[512];
    write_config(path, sizeof(path), "bad_value.ini", "[train]\n\nsteps = many\n");
    TjConfig *c2 = config_new();
    assert_int_equal(config_load_file(c2, path, err, sizeof(err)), 0);
    assert_int_not_equal(config_get_int(c2, "train", "steps", 0, &l, err, sizeof(err)), 0);
    assert_non_null(strstr(err, "bad_value.ini:3"));
    config_free(c2);
    config_free(cfg);
}

static void test_overrides(void **state) {
    (void)state;
    TjConfig *cfg = load_example();
    char err[512];
    long l;
    assert_int_equal(config_set_override(cfg, "run.seed=99", err, sizeof(err)), 0);
    assert_int_equal(config_get_int(cfg, "run", "seed", 0, &l, err, sizeof(err)), 0);
    assert_int_equal(l, 99);
    assert_int_equal(config_set_override(cfg, "train.steps = 10 ", err, sizeof(err)), 0);
    assert_string_equal(config_get(cfg, "train", "steps"), "10");
    assert_int_equal(config_set_override(cfg, "probe.mvsa.ok=no", err, sizeof(err)), 0);
    assert_string_equal(config_get(cfg, "probe.mvsa", "ok"), "no");
    assert_int_equal(config_set_override(cfg, "data.train=a=b # not a comment", err, sizeof(err)),
                     0);
    assert_string_equal(config_get(cfg, "data", "train"), "a=b # not a comment");
    assert_int_equal(config_set_override(cfg, "data.vocab=", err, sizeof(err)), 0);
    assert_string_equal(config_get(cfg, "data", "vocab"), "");
    // An override that fails to parse as the getter's type says where it came from.
    assert_int_equal(config_set_override(cfg, "train.steps=ten", err, sizeof(err)), 0);
    assert_int_not_equal(config_get_int(cfg, "train", "steps", 0, &l, err, sizeof(err)), 0);
    assert_non_null(strstr(err, "--set"));

    const char *bad[] = {"noequals",       "nodot=1",       ".key=1", "section.=1",
                         "sec tion.key=1", "section.k y=1", "=1"};
    for (int i = 0; i < 7; i++) {
        err[0] = '\0';
        assert_int_not_equal(config_set_override(cfg, bad[i], err, sizeof(err)), 0);
        assert_non_null(strstr(err, bad[i]));
    }
    config_free(cfg);
}

static void expect_syntax_error(const char *text, const char *where, const char *what) {
    char path[512], err[512] = "";
    write_config(path, sizeof(path), "syntax.ini", text);
    TjConfig *cfg = config_new();
    config_set(cfg, "keep", "me", "1");
    assert_int_not_equal(config_load_file(cfg, path, err, sizeof(err)), 0);
    if (!strstr(err, where) || !strstr(err, what))
        fail_msg("error '%s' should contain '%s' and '%s'", err, where, what);
    // A failed load leaves the config as it was.
    assert_string_equal(config_get(cfg, "keep", "me"), "1");
    assert_null(config_get(cfg, "a", "x"));
    char *ini = config_to_ini(cfg);
    assert_string_equal(ini, "[keep]\nme = 1\n");
    free(ini);
    config_free(cfg);
}

static void test_syntax_errors(void **state) {
    (void)state;
    expect_syntax_error("[a]\nx = 1\nnot a key value\n", "syntax.ini:3", "expected");
    expect_syntax_error("[a]\nx = 1\n[broken\n", "syntax.ini:3", "']'");
    expect_syntax_error("x = 1\n", "syntax.ini:1", "outside any [section]");
    expect_syntax_error("[a]\nx = 1\n[]\n", "syntax.ini:3", "section name");
    expect_syntax_error("[a b]\n", "syntax.ini:1", "section name");
    expect_syntax_error("[a] junk\n", "syntax.ini:1", "after section header");
    expect_syntax_error("[a]\nx = 1\nk y = 2\n", "syntax.ini:3", "bad key");
    expect_syntax_error("[a]\n = 2\n", "syntax.ini:2", "bad key");
    expect_syntax_error("[a]\nx = \"open\n", "syntax.ini:2", "unterminated");
    expect_syntax_error("[a]\nx = \"q\" tail\n", "syntax.ini:2", "after the closing quote");
    expect_syntax_error("[a]\nx = \"\\q\"\n", "syntax.ini:2", "escape");
    char err[512];
    TjConfig *cfg = config_new();
    assert_int_not_equal(config_load_file(cfg, "/nonexistent/run.ini", err, sizeof(err)), 0);
    assert_non_null(strstr(err, "/nonexistent/run.ini"));
    config_free(cfg);
}

// load(to_ini(cfg)) has the same entries, and writing it again gives the same text.
static void test_round_trip(void **state) {
    (void)state;
    TjConfig *cfg = load_example();
    config_set(cfg, "extra", "weird", " lead#ing;\tand \"quotes\" \\ \n newline ");
    config_set(cfg, "extra", "hash_first", "#not a comment");
    config_set(cfg, "extra", "semi_first", ";nor this");
    config_set(cfg, "extra", "quote_first", "\"x");
    config_set(cfg, "extra", "utf8", "naïve 我 ❤");
    config_set(cfg, "extra", "control", "a\x01z");
    config_set(cfg, "empty_section_follows", "k", "v");
    char *ini = config_to_ini(cfg);
    assert_non_null(ini);
    char err[512];
    TjConfig *back = config_new();
    if (config_load_string(back, ini, "to_ini", err, sizeof(err))) fail_msg("%s\n%s", err, ini);
    const char *keys[][2] = {
        {"run", "name"},         {"run", "seed"},         {"run", "dir"},
        {"data", "train"},       {"data", "split"},       {"data", "hash"},
        {"data", "quoted"},      {"data", "empty"},       {"optim", "lr"},
        {"optim", "clip_grad"},  {"probe.mvsa", "ok"},    {"extra", "weird"},
        {"extra", "hash_first"}, {"extra", "semi_first"}, {"extra", "quote_first"},
        {"extra", "utf8"},       {"extra", "control"},    {"empty_section_follows", "k"},
    };
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        const char *want = config_get(cfg, keys[i][0], keys[i][1]);
        const char *got = config_get(back, keys[i][0], keys[i][1]);
        assert_non_null(want);
        if (!got || strcmp(want, got))
            fail_msg("%s.%s: '%s' came back as '%s'", keys[i][0], keys[i][1], want,
                     got ? got : "(absent)");
    }
    char *again = config_to_ini(back);
    assert_string_equal(ini, again);
    // Sections in first-seen order.
    char *run = strstr(ini, "[run]"), *data = strstr(ini, "[data]"), *opt = strstr(ini, "[optim]");
    assert_true(run && data && opt && run < data && data < opt);
    free(ini);
    free(again);
    config_free(back);

    // Through a file too, and an empty config.
    char path[512];
    ini = config_to_ini(cfg);
    write_config(path, sizeof(path), "round.ini", ini);
    back = config_new();
    assert_int_equal(config_load_file(back, path, err, sizeof(err)), 0);
    again = config_to_ini(back);
    assert_string_equal(ini, again);
    free(ini);
    free(again);
    config_free(back);
    config_free(cfg);
    TjConfig *empty = config_new();
    ini = config_to_ini(empty);
    assert_string_equal(ini, "");
    assert_int_equal(config_load_string(empty, ini, "empty", err, sizeof(err)), 0);
    free(ini);
    config_free(empty);
}

static int setup(void **state) {
    (void)state;
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state) {
    (void)state;
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse),      cmocka_unit_test(test_typed_getters),
        cmocka_unit_test(test_overrides),  cmocka_unit_test(test_syntax_errors),
        cmocka_unit_test(test_round_trip),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
