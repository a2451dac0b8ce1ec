// Shard specs: brace ranges (padded, several braces, lists), globs, directories, list files,
// "::" unions, and the errors that must stop a run before it starts (missing shards).
#include "shards_fixtures.h"

static char *g_dir;

static int setup(void **state) {
    (void)state;
    g_dir = fx_tmpdir("spec");
    const char *names[] = {
        "train-000000.tar", "train-000001.tar", "train-000002.tar", "train-000003.tar", "a-0.tar",
        "a-1.tar",          "b-0.tar",          "b-1.tar",          "c.tar.gz",         "d.tgz",
        "readme.txt",       "x.tar.tmp123"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        fx_tar(fx_path("%s/%s", g_dir, names[i]), NULL, 0);
    assert_int_equal(mkdir(fx_path("%s/sub", g_dir), 0755), 0);
    assert_int_equal(mkdir(fx_path("%s/empty", g_dir), 0755), 0);
    fx_tar(fx_path("%s/sub/s1.tar", g_dir), NULL, 0);
    fx_tar(fx_path("%s/sub/s0", g_dir), NULL, 0); // a shard without the usual name
    const char *list = "# shards of the run\n"
                       "\n"
                       "  sub/s1.tar  \n"
                       "train-000002.tar\r\n"
                       "# the end\n";
    fx_write_file(fx_path("%s/list.txt", g_dir), list, strlen(list));
    const char *bad = "train-000000.tar\nnope.tar\n";
    fx_write_file(fx_path("%s/badlist.txt", g_dir), bad, strlen(bad));
    fx_write_file(fx_path("%s/emptylist.txt", g_dir), "# nothing\n", 10);
    return 0;
}

static int teardown(void **state) {
    (void)state;
    fx_rmtree(g_dir);
    free(g_dir);
    return 0;
}

// Expands spec (relative to g_dir) and compares with the expected names (relative to g_dir).
static void expect(const char *spec_rel, const char *const *want, int n) {
    char spec[2048], err[1024];
    snprintf(spec, sizeof(spec), "%s/%s", g_dir, spec_rel);
    // "::" unions: prefix every part with the folder
    if (strstr(spec_rel, "::")) {
        char copy[1024];
        snprintf(copy, sizeof(copy), "%s", spec_rel);
        spec[0] = 0;
        for (char *p = strtok(copy, ":"); p; p = strtok(NULL, ":")) {
            if (spec[0]) strcat(spec, "::");
            strcat(spec, g_dir), strcat(spec, "/"), strcat(spec, p);
        }
    }
    ShardList l;
    if (shard_spec_expand(&l, spec, err, sizeof(err))) fail_msg("%s: %s", spec, err);
    if (l.n != n) fail_msg("%s: %d shards, want %d", spec, l.n, n);
    for (int i = 0; i < n; i++)
        assert_string_equal(l.paths[i], fx_path("%s/%s", g_dir, want[i]));
    shard_list_free(&l);
}

static void expect_error(const char *spec_rel, const char *needle) {
    char spec[2048], err[1024] = "";
    snprintf(spec, sizeof(spec), "%s/%s", g_dir, spec_rel);
    ShardList l;
    assert_int_not_equal(shard_spec_expand(&l, spec, err, sizeof(err)), 0);
    if (!strstr(err, needle)) fail_msg("%s: error \"%s\" lacks \"%s\"", spec, err, needle);
    assert_int_equal(l.n, 0);
}

static void expect_error(const char *spec_rel, const char *needle);

static void test_braces(void **state) {
    (void)state;
    const char *w4[] = {"train-000000.tar", "train-000001.tar", "train-000002.tar",
                        "train-000003.tar"};
    expect("train-{000000..000003}.tar", w4, 4);
    const char *w2[] = {"train-000001.tar", "train-000002.tar"};
    expect("train-{000001..000002}.tar", w2, 2);
    const char *wd[] = {"train-000002.tar", "train-000001.tar"};
    expect("train-{000002..000001}.tar", wd, 2); // descending
    const char *wab[] = {"a-0.tar", "a-1.tar", "b-0.tar", "b-1.tar"};
    expect("{a,b}-{0..1}.tar", wab, 4);
    const char *wpad[] = {"train-000003.tar"};
    expect("train-00000{3..3}.tar", wpad, 1);
    expect_error("train-{00..03}.tar", "train-00.tar"); // padded to the bounds' width
}

static void test_brace_errors(void **state) {
    (void)state;
    expect_error("train-{000000..000004}.tar", "train-000004.tar");
    expect_error("train-{000000..000004}.tar", "does not exist");
    expect_error("train-{0..3}.tar", "train-0.tar"); // no padding: these names do not exist
    expect_error("train-{000000..000003.tar", "braces");
    expect_error("train-{a{b}}.tar", "braces");
    expect_error("train-{x}.tar", "braces must hold");
    expect_error("train-{0..99999999}.tar", "too large");
}

static void test_glob_dir_file(void **state) {
    (void)state;
    const char *wg[] = {"train-000000.tar", "train-000001.tar", "train-000002.tar",
                        "train-000003.tar"};
    expect("train-*.tar", wg, 4);
    const char *wdir[] = {
        "a-0.tar", "a-1.tar",          "b-0.tar",          "b-1.tar",          "c.tar.gz",
        "d.tgz",   "train-000000.tar", "train-000001.tar", "train-000002.tar", "train-000003.tar"};
    expect("", wdir, 10); // the folder itself
    const char *wf[] = {"c.tar.gz"};
    expect("c.tar.gz", wf, 1);
    const char *ws0[] = {"sub/s0"}; // recognised by its ustar header
    expect("sub/s0", ws0, 1);
    expect_error("nothing-*.tar", "matches no file");
    expect_error("empty", "holds no");
    expect_error("missing.tar", "no such file");
}

static void test_list_files(void **state) {
    (void)state;
    const char *wl[] = {"sub/s1.tar", "train-000002.tar"};
    expect("list.txt", wl, 2);
    expect_error("badlist.txt", "badlist.txt:2");
    expect_error("badlist.txt", "nope.tar");
    expect_error("emptylist.txt", "names no shard");
    const char *wu[] = {"a-0.tar", "a-1.tar", "sub/s1.tar", "train-000002.tar", "d.tgz"};
    expect("a-{0..1}.tar::list.txt::d.tgz", wu, 5);
    char err[256];
    ShardList l;
    assert_int_not_equal(shard_spec_expand(&l, "", err, sizeof(err)), 0);
    assert_int_not_equal(shard_spec_expand(&l, NULL, err, sizeof(err)), 0);
    shard_list_free(NULL);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_braces),
        cmocka_unit_test(test_brace_errors),
        cmocka_unit_test(test_glob_dir_file),
        cmocka_unit_test(test_list_files),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
