// launch/cmd_ckpt.c: `tijepa ckpt inspect|export` exit codes and outputs (0 ok, 1 error, 2 usage).
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "tmpdir_fixture.h"

#include "checkpoint.h"
#include "launch.h"

TMPDIR_FIXTURE("cmdckpt")

// Runs cmd_ckpt with the given words (argv[0] = "ckpt"), stdout captured into out.
static int run(char *out, size_t cap, int n, ...) {
    char *argv[16] = {"ckpt"};
    va_list ap;
    va_start(ap, n);
    for (int i = 0; i < n; i++)
        argv[i + 1] = va_arg(ap, char *);
    va_end(ap);
    fflush(stdout);
    int saved = dup(STDOUT_FILENO);
    FILE *capture = tmpfile();
    dup2(fileno(capture), STDOUT_FILENO);
    int rc = cmd_ckpt(n + 1, argv);
    fflush(stdout);
    dup2(saved, STDOUT_FILENO);
    close(saved);
    rewind(capture);
    size_t got = fread(out, 1, cap - 1, capture);
    out[got] = '\0';
    fclose(capture);
    return rc;
}

static void save_checkpoint(const char *ckpt_dir, int64_t step) {
    static float w[6] = {1, 2, 3, 4, 5, 6}, e[6] = {6, 5, 4, 3, 2, 1};
    int64_t shape[2] = {2, 3};
    CkptContent c;
    ckpt_content_init(&c);
    char err[CKPT_ERR_LEN];
    assert_int_equal(ckpt_add_tensor(&c, "params", "head.weight", 2, shape, w, err, sizeof(err)),
                     0);
    assert_int_equal(ckpt_add_tensor(&c, "ema", "head.weight", 2, shape, e, err, sizeof(err)), 0);
    assert_int_equal(ckpt_set_str(&c, "config", "[model]\npreset = tiny\n", err, sizeof(err)), 0);
    if (ckpt_save(ckpt_dir, step, &c, 0, err, sizeof(err))) fail_msg("%s", err);
    ckpt_content_free(&c);
}

static void test_usage(void **state) {
    (void)state;
    static char out[8192];
    assert_int_equal(run(out, sizeof(out), 0), TJ_EXIT_USAGE);
    assert_int_equal(run(out, sizeof(out), 1, "--help"), TJ_EXIT_OK);
    assert_non_null(strstr(out, "tijepa ckpt inspect PATH"));
    assert_int_equal(run(out, sizeof(out), 1, "frobnicate"), TJ_EXIT_USAGE);
    assert_int_equal(run(out, sizeof(out), 1, "inspect"), TJ_EXIT_USAGE);
    assert_int_equal(run(out, sizeof(out), 3, "inspect", "a", "b"), TJ_EXIT_USAGE);
    assert_int_equal(run(out, sizeof(out), 2, "export", "x.h5"), TJ_EXIT_USAGE);
    assert_int_equal(run(out, sizeof(out), 3, "export", "x.h5", "--out"), TJ_EXIT_USAGE);
    assert_int_equal(run(out, sizeof(out), 6, "export", "x.h5", "--format", "onnx", "--out", "y"),
                     TJ_EXIT_USAGE);
    assert_int_equal(run(out, sizeof(out), 4, "export", "x.h5", "--bogus", "1"), TJ_EXIT_USAGE);
}

static void test_inspect(void **state) {
    (void)state;
    static char out[65536];
    char ckpt_dir[128], path[160], run_dir[128];
    snprintf(run_dir, sizeof(run_dir), "%s/run", dir);
    snprintf(ckpt_dir, sizeof(ckpt_dir), "%s/run/ckpt", dir);
    save_checkpoint(ckpt_dir, 10);
    save_checkpoint(ckpt_dir, 20);
    snprintf(path, sizeof(path), "%s/step-00000010.h5", ckpt_dir);
    assert_int_equal(run(out, sizeof(out), 2, "inspect", path), TJ_EXIT_OK);
    assert_non_null(strstr(out, "step             10"));
    assert_non_null(strstr(out, "head.weight"));
    assert_non_null(strstr(out, "[2, 3]"));
    assert_non_null(strstr(out, "preset = tiny"));
    assert_non_null(strstr(out, "checksums        OK"));
    // A checkpoint directory and a run directory resolve to the newest checkpoint.
    assert_int_equal(run(out, sizeof(out), 2, "inspect", ckpt_dir), TJ_EXIT_OK);
    assert_non_null(strstr(out, "step             20"));
    assert_int_equal(run(out, sizeof(out), 2, "inspect", run_dir), TJ_EXIT_OK);
    assert_non_null(strstr(out, "step             20"));
    // Errors.
    assert_int_equal(run(out, sizeof(out), 2, "inspect", "/nonexistent/step-00000001.h5"),
                     TJ_EXIT_ERROR);
    assert_int_equal(run(out, sizeof(out), 2, "inspect", dir), TJ_EXIT_ERROR); // no checkpoint
    // A corrupted data byte: the report says FAILED and the exit code is 1.
    FILE *f = fopen(path, "r+b");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    unsigned char *bytes = malloc((size_t)size);
    rewind(f);
    assert_int_equal(fread(bytes, 1, (size_t)size, f), (size_t)size);
    // The params values 1..6 as float32 are adjacent in the file; flip one of them.
    float first[2] = {1, 2};
    unsigned char *hit = memmem(bytes, (size_t)size, first, sizeof(first));
    assert_non_null(hit);
    fseek(f, (long)(hit - bytes) + 2, SEEK_SET);
    fputc(hit[2] ^ 0x40, f);
    fclose(f);
    free(bytes);
    assert_int_equal(run(out, sizeof(out), 2, "inspect", path), TJ_EXIT_ERROR);
    assert_non_null(strstr(out, "checksums        FAILED"));
    assert_non_null(strstr(out, "params/head.weight"));
}

static void test_export(void **state) {
    (void)state;
    static char out[8192];
    char ckpt_dir[128], st_path[160], err[CKPT_ERR_LEN];
    snprintf(ckpt_dir, sizeof(ckpt_dir), "%s/exp", dir);
    save_checkpoint(ckpt_dir, 5);
    snprintf(st_path, sizeof(st_path), "%s/ema.safetensors", dir);
    assert_int_equal(run(out, sizeof(out), 8, "export", ckpt_dir, "--format", "safetensors",
                         "--out", st_path, "--group", "ema"),
                     TJ_EXIT_OK);
    assert_non_null(strstr(out, "wrote"));
    StFile f;
    if (st_open(&f, st_path, err, sizeof(err))) fail_msg("%s", err);
    float values[6];
    int64_t shape[2] = {2, 3};
    assert_int_equal(st_read_f32(&f, "head.weight", 2, shape, values, err, sizeof(err)), 0);
    assert_true(values[0] == 6.0f && values[5] == 1.0f);
    st_close(&f);
    // Default group is params.
    snprintf(st_path, sizeof(st_path), "%s/params.safetensors", dir);
    assert_int_equal(run(out, sizeof(out), 4, "export", ckpt_dir, "--out", st_path), TJ_EXIT_OK);
    assert_int_equal(st_open(&f, st_path, err, sizeof(err)), 0);
    assert_int_equal(st_read_f32(&f, "head.weight", 2, shape, values, err, sizeof(err)), 0);
    assert_true(values[0] == 1.0f);
    st_close(&f);
    assert_int_equal(
        run(out, sizeof(out), 6, "export", ckpt_dir, "--out", st_path, "--group", "optim/x"),
        TJ_EXIT_ERROR);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_usage),
        cmocka_unit_test(test_inspect),
        cmocka_unit_test(test_export),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
