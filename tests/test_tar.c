// Tar shards: writer → reader round trips (plain and gzip), WebDataset grouping rules, the cheap
// sample checks, deterministic output, and damaged shards (truncated, corrupt gzip, not a tar).
#include "shards_fixtures.h"

typedef struct {
    char key[32];
    uint8_t *png;
    size_t png_len;
    int w, h;
    char caption[64];
    int label; // −1: no .cls
    char json[64];
} RefSample;

static void make_refs(RefSample *r, int n) {
    for (int i = 0; i < n; i++) {
        snprintf(r[i].key, sizeof(r[i].key), "s%04d", i);
        r[i].w = 5 + i % 7, r[i].h = 3 + i % 5;
        r[i].png = fx_png(r[i].w, r[i].h, (uint32_t)i, &r[i].png_len);
        snprintf(r[i].caption, sizeof(r[i].caption), "caption number %d, with ünïcode", i);
        r[i].label = i % 3 == 0 ? -1 : i % 5;
        snprintf(r[i].json, sizeof(r[i].json), "{\"i\": %d}", i);
    }
}

static void write_refs(const char *path, const RefSample *r, int n) {
    char err[512];
    TarWriter *w = tar_writer_open(path, err, sizeof(err));
    if (!w) fail_msg("%s", err);
    for (int i = 0; i < n; i++) {
        TarSampleOut o = {.key = r[i].key,
                          .image = r[i].png,
                          .image_len = r[i].png_len,
                          .image_ext = "png",
                          .caption = r[i].caption,
                          .has_label = r[i].label >= 0,
                          .label = r[i].label,
                          .json = r[i].json};
        if (tar_writer_add_sample(w, &o, err, sizeof(err))) fail_msg("%s", err);
    }
    if (tar_writer_close(w, err, sizeof(err))) fail_msg("%s", err);
}

static void check_round_trip(const char *name) {
    enum { N = 25 };
    char *dir = fx_tmpdir("tar");
    const char *path = fx_path("%s/%s", dir, name);
    RefSample refs[N];
    make_refs(refs, N);
    write_refs(path, refs, N);
    char err[512];
    TarReader *tr = tar_reader_open(path, err, sizeof(err));
    assert_non_null(tr);
    TarSample s;
    for (int i = 0; i < N; i++) {
        assert_int_equal(tar_reader_next(tr, &s, err, sizeof(err)), 1);
        assert_string_equal(s.key, refs[i].key);
        assert_string_equal(s.shard, path);
        assert_string_equal(s.image_ext, "png");
        assert_int_equal(s.image_len, refs[i].png_len);
        assert_memory_equal(s.image, refs[i].png, refs[i].png_len);
        assert_string_equal(s.caption, refs[i].caption);
        assert_string_equal(s.json, refs[i].json);
        int label, w, h;
        assert_int_equal(sample_check(&s, 1 << 20, &label, &w, &h, NULL, 0), SAMPLE_OK);
        assert_int_equal(label, refs[i].label);
        assert_int_equal(w, refs[i].w);
        assert_int_equal(h, refs[i].h);
        // pixels survive: decode and compare with the source
        ImageU8 img;
        assert_int_equal(image_decode(&img, s.image, s.image_len, 1 << 20, s.key, err, sizeof(err)),
                         0);
        uint8_t *want = fx_pixels(refs[i].w, refs[i].h, (uint32_t)i);
        assert_memory_equal(img.rgb, want, (size_t)refs[i].w * refs[i].h * 3);
        free(want);
        image_free(&img);
        assert_int_equal(s.n_members, 4 - (refs[i].label < 0));
        assert_int_equal(s.n_ignored, 0);
    }
    assert_int_equal(tar_reader_next(tr, &s, err, sizeof(err)), 0);
    assert_int_equal(tar_reader_next(tr, &s, err, sizeof(err)), 0);
    tar_reader_close(tr);
    for (int i = 0; i < N; i++)
        free(refs[i].png);
    fx_rmtree(dir);
    free(dir);
}

static void test_round_trip_plain(void **state) {
    (void)state;
    check_round_trip("a.tar");
}

static void test_round_trip_gzip(void **state) {
    (void)state;
    check_round_trip("a.tar.gz");
}

// The writer is deterministic: same samples → same bytes, with fixed metadata.
static void test_writer_deterministic(void **state) {
    (void)state;
    enum { N = 6 };
    char *dir = fx_tmpdir("tar");
    RefSample refs[N];
    make_refs(refs, N);
    const char *names[] = {"x.tar", "y.tar", "x.tar.gz", "y.tar.gz"};
    for (int i = 0; i < 4; i++) {
        if (i == 2) sleep(1); // a timestamp anywhere would now differ
        write_refs(fx_path("%s/%s", dir, names[i]), refs, N);
    }
    for (int k = 0; k < 4; k += 2) {
        size_t n1, n2;
        uint8_t *a = fx_read_file(fx_path("%s/%s", dir, names[k]), &n1);
        uint8_t *b = fx_read_file(fx_path("%s/%s", dir, names[k + 1]), &n2);
        assert_int_equal(n1, n2);
        assert_memory_equal(a, b, n1);
        free(a), free(b);
    }
    // ustar header of the first member: mode 0644, uid/gid 0, mtime 0, name "s0000.cls"
    size_t n;
    uint8_t *t = fx_read_file(fx_path("%s/x.tar", dir), &n);
    assert_string_equal((char *)t, "s0000.json"); // label −1 for i = 0: json sorts first
    assert_memory_equal(t + 100, "000644 ", 7);
    assert_memory_equal(t + 108, "000000 ", 7);
    assert_memory_equal(t + 136, "00000000000 ", 12);
    assert_memory_equal(t + 257, "ustar", 5);
    free(t);
    // a temporary file never remains
    assert_int_not_equal(access(fx_path("%s/x.tar.tmp%ld", dir, (long)getpid()), F_OK), 0);
    for (int i = 0; i < N; i++)
        free(refs[i].png);
    fx_rmtree(dir);
    free(dir);
}

// Members are sorted by extension within a sample, as webdataset's TarWriter writes them.
static void test_writer_member_order(void **state) {
    (void)state;
    char *dir = fx_tmpdir("tar");
    const char *path = fx_path("%s/o.tar", dir);
    char err[256];
    size_t n;
    uint8_t *jpg = fx_jpeg(8, 8, 1, &n);
    TarWriter *w = tar_writer_open(path, err, sizeof(err));
    TarSampleOut o = {.key = "k",
                      .image = jpg,
                      .image_len = n,
                      .image_ext = "jpg",
                      .caption = "c",
                      .has_label = 1,
                      .label = 7,
                      .json = "{}"};
    assert_int_equal(tar_writer_add_sample(w, &o, err, sizeof(err)), 0);
    TarSampleOut bad = {.key = "a.b", .caption = "x"};
    assert_int_not_equal(tar_writer_add_sample(w, &bad, err, sizeof(err)), 0);
    assert_non_null(strstr(err, "a.b"));
    assert_int_equal(tar_writer_close(w, err, sizeof(err)), 0);
    FILE *p = popen(fx_path("tar tf '%s'", path), "r");
    char line[256], all[1024] = "";
    while (fgets(line, sizeof(line), p))
        strcat(all, line);
    pclose(p);
    assert_string_equal(all, "k.cls\nk.jpg\nk.json\nk.txt\n");
    free(jpg);
    fx_rmtree(dir);
    free(dir);
}

// WebDataset grouping: key up to the first dot of the file name, directory kept, extensions
// lower-cased, adjacent members only, a repeated extension starts a new sample, "__x__" and
// names without an extension skipped, other extensions ignored and counted.
static void test_grouping_rules(void **state) {
    (void)state;
    char *dir = fx_tmpdir("tar");
    const char *path = fx_path("%s/g.tar", dir);
    size_t pn;
    uint8_t *png = fx_png(4, 4, 3, &pn);
    FxMember m[] = {
        {"__key__", "meta", 0},
        {"a.png", png, pn},
        {"a.txt", "cap a", 0},
        {"dir/b.PNG", png, pn},
        {"dir/b.TXT", "cap b", 0},
        {"c.d.txt", "not a caption", 0},
        {"c.png", png, pn},
        {"noext", "x", 0},
        {"__meta__.json", "{}", 0},
        {"e.png", png, pn},
        {"e.png", png, pn},
        {"e.txt", "cap e", 0},
        {"f.jpg", png, pn},
        {"f.txt", "cap f", 0},
        {"f.weird", "?", 0},
        {"g.png", png, pn},
        {"h.txt", "cap h", 0},
        {"g.txt", "cap g", 0},
        {"d.x/i.json", "{\"k\":1}", 0},
        {".hidden.txt", "h", 0},
    };
    fx_tar(path, m, (int)(sizeof(m) / sizeof(m[0])));
    struct {
        const char *key, *ext, *caption;
        int ignored;
    } want[] = {
        {"a", "png", "cap a", 0}, {"dir/b", "png", "cap b", 0}, {"c", "png", NULL, 1},
        {"e", "png", NULL, 0},    {"e", "png", "cap e", 0},     {"f", "jpg", "cap f", 1},
        {"g", "png", NULL, 0},    {"h", NULL, "cap h", 0},      {"g", NULL, "cap g", 0},
        {"d.x/i", NULL, NULL, 0},
    };
    char err[256];
    TarReader *tr = tar_reader_open(path, err, sizeof(err));
    TarSample s;
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        assert_int_equal(tar_reader_next(tr, &s, err, sizeof(err)), 1);
        assert_string_equal(s.key, want[i].key);
        if (want[i].ext)
            assert_string_equal(s.image_ext, want[i].ext);
        else
            assert_null(s.image_ext);
        if (want[i].caption)
            assert_string_equal(s.caption, want[i].caption);
        else
            assert_null(s.caption);
        assert_int_equal(s.n_ignored, want[i].ignored);
    }
    assert_string_equal(s.json, "{\"k\":1}");
    assert_int_equal(tar_reader_next(tr, &s, err, sizeof(err)), 0);
    assert_int_equal(tar_reader_skipped_members(tr),
                     4); // __key__, noext, __meta__.json, .hidden.txt
    tar_reader_close(tr);
    free(png);
    fx_rmtree(dir);
    free(dir);
}

static TarSample fake(const uint8_t *img, size_t n, const char *ext, const char *cap,
                      const char *cls) {
    TarSample s = {.shard = "x.tar",
                   .key = "k",
                   .image = img,
                   .image_len = n,
                   .image_ext = ext,
                   .caption = cap,
                   .caption_len = cap ? strlen(cap) : 0,
                   .cls = cls,
                   .cls_len = cls ? strlen(cls) : 0};
    return s;
}

// The cheap checks, one per problem.
static void test_sample_checks(void **state) {
    (void)state;
    size_t pn, jn;
    uint8_t *png = fx_png(40, 30, 1, &pn), *jpg = fx_jpeg(33, 17, 2, &jn);
    int label, w, h;
    char why[256];
    TarSample s = fake(png, pn, "png", "a caption", "4");
    assert_int_equal(sample_check(&s, 10000, &label, &w, &h, why, sizeof(why)), SAMPLE_OK);
    assert_int_equal(label, 4);
    assert_int_equal(w, 40);
    assert_int_equal(h, 30);
    s = fake(jpg, jn, "jpg", "a caption", " 12\n");
    assert_int_equal(sample_check(&s, 10000, &label, &w, &h, why, sizeof(why)), SAMPLE_OK);
    assert_int_equal(label, 12);
    assert_int_equal(w, 33);
    assert_int_equal(h, 17);
    s = fake(png, pn, "png", "a caption", NULL);
    assert_int_equal(sample_check(&s, 10000, &label, NULL, NULL, why, sizeof(why)), SAMPLE_OK);
    assert_int_equal(label, -1);

    struct {
        TarSample s;
        SampleProblem want;
    } cases[] = {
        {fake(NULL, 0, NULL, "cap", NULL), SAMPLE_NO_IMAGE},
        {fake((const uint8_t *)"just some text", 14, "png", "cap", NULL), SAMPLE_NOT_IMAGE},
        {fake(png, 12, "png", "cap", NULL), SAMPLE_BAD_HEADER},
        {fake(jpg, 6, "jpg", "cap", NULL), SAMPLE_BAD_HEADER},
        {fake(NULL, 1u << 30, "png", "cap", NULL), SAMPLE_TOO_LARGE}, // member not kept
        {fake(png, pn, "png", NULL, NULL), SAMPLE_NO_CAPTION},
        {fake(png, pn, "png", " \n\t ", NULL), SAMPLE_EMPTY_CAPTION},
        {fake(png, pn, "png", "", NULL), SAMPLE_EMPTY_CAPTION},
        {fake(png, pn, "png", "bad \xff byte", NULL), SAMPLE_BAD_UTF8},
        {fake(png, pn, "png", "overlong \xc0\xaf", NULL), SAMPLE_BAD_UTF8},
        {fake(png, pn, "png", "surrogate \xed\xa0\x80", NULL), SAMPLE_BAD_UTF8},
        {fake(png, pn, "png", "cut \xe2\x82", NULL), SAMPLE_BAD_UTF8},
        {fake(png, pn, "png", "cap", "abc"), SAMPLE_BAD_LABEL},
        {fake(png, pn, "png", "cap", "-1"), SAMPLE_BAD_LABEL},
        {fake(png, pn, "png", "cap", "3.5"), SAMPLE_BAD_LABEL},
        {fake(png, pn, "png", "cap", ""), SAMPLE_BAD_LABEL},
        {fake(png, pn, "png", "cap", "99999999999"), SAMPLE_BAD_LABEL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        SampleProblem p = sample_check(&cases[i].s, 10000, &label, NULL, NULL, why, sizeof(why));
        if (p != cases[i].want)
            fail_msg("case %zu: got %s, want %s (%s)", i, sample_problem_name(p),
                     sample_problem_name(cases[i].want), why);
        assert_true(strlen(why) > 0);
        assert_int_equal(label, -1);
    }
    // pixel limit: 40·30 = 1200 pixels
    s = fake(png, pn, "png", "cap", NULL);
    assert_int_equal(sample_check(&s, 1199, NULL, NULL, NULL, why, sizeof(why)), SAMPLE_TOO_LARGE);
    assert_non_null(strstr(why, "40x30"));
    assert_int_equal(sample_check(&s, 1200, NULL, NULL, NULL, why, sizeof(why)), SAMPLE_OK);
    // a caption with a NUL byte inside is refused
    TarSample z = fake(png, pn, "png", "ab", NULL);
    z.caption = "a\0b", z.caption_len = 3;
    assert_int_equal(sample_check(&z, 10000, NULL, NULL, NULL, why, sizeof(why)), SAMPLE_BAD_UTF8);
    assert_true(utf8_valid("héllo wörld 日本 \xf0\x9f\x98\x80",
                           strlen("héllo wörld 日本 \xf0\x9f\x98\x80")));
    assert_false(utf8_valid("\xf4\x90\x80\x80", 4)); // above U+10FFFF
    assert_string_equal(sample_problem_name(SAMPLE_BAD_UTF8), "bad_utf8");
    free(png), free(jpg);
}

static void write_samples(const char *path, int n) {
    RefSample *refs = calloc((size_t)n, sizeof(*refs));
    make_refs(refs, n);
    write_refs(path, refs, n);
    for (int i = 0; i < n; i++)
        free(refs[i].png);
    free(refs);
}

// A truncated shard: the samples before the cut come back, then −1 naming the shard.
static void test_truncated_tar(void **state) {
    (void)state;
    char *dir = fx_tmpdir("tar");
    const char *names[] = {"t.tar", "t.tar.gz"};
    for (int k = 0; k < 2; k++) {
        char path[512];
        snprintf(path, sizeof(path), "%s/%s", dir, names[k]);
        write_samples(path, 40);
        fx_truncate(path, 0.5);
        char err[512] = "";
        TarReader *tr = tar_reader_open(path, err, sizeof(err));
        assert_non_null(tr);
        TarSample s;
        int rc, n = 0;
        while ((rc = tar_reader_next(tr, &s, err, sizeof(err))) == 1) {
            assert_string_equal(s.key, fx_path("s%04d", n));
            n++;
        }
        assert_int_equal(rc, -1);
        assert_true(n >= 5 && n < 40);
        assert_non_null(strstr(err, path));
        assert_int_equal(tar_reader_next(tr, &s, err, sizeof(err)), -1); // stays damaged
        tar_reader_close(tr);
    }
    fx_rmtree(dir);
    free(dir);
}

// A plain tar cut exactly at a member boundary (no end-of-archive blocks) is reported too.
static void test_truncated_at_member_boundary(void **state) {
    (void)state;
    char *dir = fx_tmpdir("tar");
    char path[512];
    snprintf(path, sizeof(path), "%s/b.tar", dir);
    write_samples(path, 30);
    size_t n;
    uint8_t *d = fx_read_file(path, &n);
    size_t cut = 0;
    for (size_t off = 0; off + 512 <= n; off += 512)
        if (!memcmp(d + off, "s0020.", 6)) { // the header of sample 20's first member
            cut = off;
            break;
        }
    assert_true(cut > 0);
    assert_int_equal(truncate(path, (off_t)cut), 0);
    free(d);
    char err[512];
    TarReader *tr = tar_reader_open(path, err, sizeof(err));
    TarSample s;
    int rc, got = 0;
    while ((rc = tar_reader_next(tr, &s, err, sizeof(err))) == 1)
        got++;
    assert_int_equal(rc, -1);
    assert_int_equal(got, 19); // sample 19 may have been cut short: dropped with the damage
    assert_non_null(strstr(err, "end-of-archive"));
    assert_non_null(strstr(err, path));
    tar_reader_close(tr);
    fx_rmtree(dir);
    free(dir);
}

// Corrupt gzip (bytes flipped in the middle of the stream) and files that are not tars.
static void test_corrupt_inputs(void **state) {
    (void)state;
    char *dir = fx_tmpdir("tar");
    const char *gz = fx_path("%s/c.tar.gz", dir);
    write_samples(gz, 40);
    size_t n;
    uint8_t *d = fx_read_file(gz, &n);
    for (size_t i = n / 2; i < n / 2 + 64; i++)
        d[i] ^= 0x5A;
    fx_write_file(gz, d, n);
    free(d);
    char err[512];
    TarReader *tr = tar_reader_open(gz, err, sizeof(err));
    TarSample s;
    int rc, got = 0;
    while ((rc = tar_reader_next(tr, &s, err, sizeof(err))) == 1)
        got++;
    assert_int_equal(rc, -1);
    assert_true(got < 40);
    assert_non_null(strstr(err, "c.tar.gz"));
    tar_reader_close(tr);

    const char *txt = fx_path("%s/notatar.tar", dir);
    const char *junk = "this is plainly not a tar file, just text that goes on for a while\n";
    fx_write_file(txt, junk, strlen(junk));
    tr = tar_reader_open(txt, err, sizeof(err)); // refused at open or at the first sample
    if (tr) assert_int_equal(tar_reader_next(tr, &s, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "notatar.tar"));
    tar_reader_close(tr);

    assert_null(tar_reader_open(fx_path("%s/missing.tar", dir), err, sizeof(err)));
    assert_non_null(strstr(err, "missing.tar"));

    // gzip magic with garbage after it
    const uint8_t badgz[] = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 0xde, 0xad, 0xbe, 0xef, 1, 2, 3};
    tr = tar_reader_open_memory(badgz, sizeof(badgz), "mem.tar.gz", err, sizeof(err));
    if (tr) assert_int_equal(tar_reader_next(tr, &s, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "mem.tar.gz"));
    tar_reader_close(tr);
    fx_rmtree(dir);
    free(dir);
}

// Empty shards (a tar with no member, a zero-byte file) hold zero samples: not an error.
static void test_empty_shard(void **state) {
    (void)state;
    char *dir = fx_tmpdir("tar");
    const char *a = fx_path("%s/empty.tar", dir), *b = fx_path("%s/zero.tar", dir);
    fx_tar(a, NULL, 0);
    fx_write_file(b, "", 0);
    const char *paths[] = {a, b};
    for (int i = 0; i < 2; i++) {
        char err[256];
        TarReader *tr = tar_reader_open(paths[i], err, sizeof(err));
        assert_non_null(tr);
        TarSample s;
        assert_int_equal(tar_reader_next(tr, &s, err, sizeof(err)), 0);
        tar_reader_close(tr);
    }
    fx_rmtree(dir);
    free(dir);
}

// Rolling writer: shards of per_shard samples named by the pattern.
static void test_shard_writer(void **state) {
    (void)state;
    char *dir = fx_tmpdir("tar");
    char err[256];
    assert_int_equal(shard_pattern_check("a-%06d.tar", err, sizeof(err)), 0);
    assert_int_equal(shard_pattern_check("a-%d-100%%.tar", err, sizeof(err)), 0);
    assert_int_not_equal(shard_pattern_check("a.tar", err, sizeof(err)), 0);
    assert_int_not_equal(shard_pattern_check("a-%s.tar", err, sizeof(err)), 0);
    assert_int_not_equal(shard_pattern_check("a-%d-%d.tar", err, sizeof(err)), 0);
    ShardWriter *w = shard_writer_open(fx_path("%s/p-%%03d.tar", dir), 4, err, sizeof(err));
    assert_non_null(w);
    for (int i = 0; i < 10; i++) {
        char key[16];
        snprintf(key, sizeof(key), "k%02d", i);
        TarSampleOut o = {.key = key, .caption = "c"};
        assert_int_equal(shard_writer_add(w, &o, err, sizeof(err)), 0);
    }
    int n = 0;
    assert_int_equal(shard_writer_close(w, &n, err, sizeof(err)), 0);
    assert_int_equal(n, 3);
    int counts[3] = {4, 4, 2};
    for (int s = 0; s < 3; s++) {
        TarReader *tr = tar_reader_open(fx_path("%s/p-%03d.tar", dir, s), err, sizeof(err));
        assert_non_null(tr);
        TarSample t;
        int k = 0;
        while (tar_reader_next(tr, &t, err, sizeof(err)) == 1) {
            assert_string_equal(t.key, fx_path("k%02d", s * 4 + k));
            k++;
        }
        assert_int_equal(k, counts[s]);
        tar_reader_close(tr);
    }
    assert_int_not_equal(access(fx_path("%s/p-003.tar", dir), F_OK), 0);
    // a folder that does not exist: a clear error naming the file
    w = shard_writer_open("/nonexistent-dir/x-%d.tar", 4, err, sizeof(err));
    TarSampleOut o = {.key = "k", .caption = "c"};
    assert_int_not_equal(shard_writer_add(w, &o, err, sizeof(err)), 0);
    assert_non_null(strstr(err, "/nonexistent-dir/x-0.tar"));
    shard_writer_close(w, NULL, err, sizeof(err));
    fx_rmtree(dir);
    free(dir);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip_plain),
        cmocka_unit_test(test_round_trip_gzip),
        cmocka_unit_test(test_writer_deterministic),
        cmocka_unit_test(test_writer_member_order),
        cmocka_unit_test(test_grouping_rules),
        cmocka_unit_test(test_sample_checks),
        cmocka_unit_test(test_truncated_tar),
        cmocka_unit_test(test_truncated_at_member_boundary),
        cmocka_unit_test(test_corrupt_inputs),
        cmocka_unit_test(test_empty_shard),
        cmocka_unit_test(test_shard_writer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
