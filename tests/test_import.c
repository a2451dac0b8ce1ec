// tijepa shard importers on tiny fixtures: folder of captioned images, captions TSV, COCO captions
// JSON, MVSA-Single and MVSA-Multiple (label rules), and their errors.
#include "shards_fixtures.h"

typedef struct {
    const char *key, *caption, *source; // source: the image file the bytes must equal
    int label;
} Want;

// Reads every sample of the shards named by spec and compares with want[].
static void expect_shards(const char *spec, const Want *want, int n, int n_shards) {
    ShardList l;
    char err[1024];
    if (shard_spec_expand(&l, spec, err, sizeof(err))) fail_msg("%s", err);
    assert_int_equal(l.n, n_shards);
    int k = 0;
    for (int i = 0; i < l.n; i++) {
        TarReader *tr = tar_reader_open(l.paths[i], err, sizeof(err));
        TarSample t;
        while (tar_reader_next(tr, &t, err, sizeof(err)) == 1) {
            assert_true(k < n);
            assert_string_equal(t.key, want[k].key);
            assert_string_equal(t.caption, want[k].caption);
            int label;
            assert_int_equal(sample_check(&t, 1 << 24, &label, NULL, NULL, NULL, 0), SAMPLE_OK);
            assert_int_equal(label, want[k].label);
            size_t fn;
            uint8_t *file = fx_read_file(want[k].source, &fn);
            assert_int_equal(t.image_len, fn);
            assert_memory_equal(t.image, file, fn); // bytes stored unchanged
            free(file);
            assert_non_null(t.json);
            k++;
        }
        tar_reader_close(tr);
    }
    assert_int_equal(k, n);
    shard_list_free(&l);
}

static void put_png(const char *path, uint32_t seed) {
    size_t n;
    uint8_t *p = fx_png(6, 5, seed, &n);
    fx_write_file(path, p, n);
    free(p);
}

static void put_jpg(const char *path, uint32_t seed) {
    size_t n;
    uint8_t *p = fx_jpeg(9, 7, seed, &n);
    fx_write_file(path, p, n);
    free(p);
}

static void put_text(const char *path, const char *text) {
    fx_write_file(path, text, strlen(text));
}

static int run_import(ImportOptions *o, ImportResult *r, const char *log_path) {
    FILE *log = fopen(log_path, "w");
    o->log = log;
    char err[1024];
    int rc = import_shards(o, r, err, sizeof(err));
    if (rc) fprintf(log, "ERROR: %s\n", err);
    fclose(log);
    return rc;
}

static void test_import_dir(void **state) {
    (void)state;
    char *dir = fx_tmpdir("imp");
    char *src = strdup(fx_path("%s/src", dir));
    mkdir(src, 0755);
    put_png(fx_path("%s/img0.png", src), 1);
    put_text(fx_path("%s/img0.txt", src), "  a first caption\n");
    put_jpg(fx_path("%s/img1.JPG", src), 2);
    put_text(fx_path("%s/img1.txt", src), "second");
    put_text(fx_path("%s/img1.cls", src), "2\n");
    put_png(fx_path("%s/img2.png", src), 3); // no caption
    put_png(fx_path("%s/img3.png", src), 4);
    put_text(fx_path("%s/img3.txt", src), " \n"); // empty caption
    put_png(fx_path("%s/img.4.png", src), 5);
    put_text(fx_path("%s/img.4.txt", src), "dotted name");
    put_text(fx_path("%s/notimg.png", src), "text pretending to be a picture");
    put_text(fx_path("%s/notimg.txt", src), "caption");
    put_text(fx_path("%s/readme.md", src), "ignored");
    ImportOptions o;
    import_options_default(&o);
    o.from = src, o.out_pattern = fx_path("%s/out-%%02d.tar", dir), o.per_shard = 2;
    ImportResult r;
    assert_int_equal(run_import(&o, &r, fx_path("%s/log", dir)), 0);
    assert_int_equal(r.written, 3);
    assert_int_equal(r.skipped, 3);
    assert_int_equal(r.shards, 2);
    char *log = fx_slurp(fx_path("%s/log", dir));
    assert_non_null(strstr(log, "img2.png"));
    assert_non_null(strstr(log, "notimg.png: not_image"));
    assert_non_null(strstr(log, "'img3': empty caption"));
    free(log);
    Want w[] = {{"img_4", "dotted name", strdup(fx_path("%s/img.4.png", src)), -1},
                {"img0", "a first caption", strdup(fx_path("%s/img0.png", src)), -1},
                {"img1", "second", strdup(fx_path("%s/img1.JPG", src)), 2}};
    expect_shards(fx_path("%s/out-{00..01}.tar", dir), w, 3, 2);
    for (int i = 0; i < 3; i++)
        free((void *)w[i].source);
    free(src);
    fx_rmtree(dir);
    free(dir);
}

static void test_import_tsv(void **state) {
    (void)state;
    char *dir = fx_tmpdir("imp");
    mkdir(fx_path("%s/pics", dir), 0755);
    put_png(fx_path("%s/pics/a.png", dir), 1);
    put_jpg(fx_path("%s/b.jpeg", dir), 2);
    const char *tsv = "path\tcaption\tlabel\n"
                      "pics/a.png\ta dog on a sofa\t3\n"
                      "\n"
                      "b.jpeg\tmeshes of \xc3\xa9t\xc3\xa9\n"
                      "missing.png\tgone\n"
                      "pics/a.png\tbad label\tx\n"
                      "just one field\n"
                      "pics/a.png\tthe same picture, another caption\t\n";
    put_text(fx_path("%s/captions.tsv", dir), tsv);
    ImportOptions o;
    import_options_default(&o);
    o.from = fx_path("%s/captions.tsv", dir), o.out_pattern = fx_path("%s/t-%%d.tar.gz", dir);
    ImportResult r;
    assert_int_equal(run_import(&o, &r, fx_path("%s/log", dir)), 0);
    assert_int_equal(r.written, 3);
    assert_int_equal(r.skipped, 3);
    char *a = strdup(fx_path("%s/pics/a.png", dir)), *b = strdup(fx_path("%s/b.jpeg", dir));
    Want w[] = {{"00000002", "a dog on a sofa", a, 3},
                {"00000004", "meshes of \xc3\xa9t\xc3\xa9", b, -1},
                {"00000008", "the same picture, another caption", a, -1}};
    expect_shards(fx_path("%s/t-0.tar.gz", dir), w, 3, 1);
    char *log = fx_slurp(fx_path("%s/log", dir));
    assert_non_null(strstr(log, "missing.png"));
    assert_non_null(strstr(log, "captions.tsv:6: label 'x'"));
    assert_non_null(strstr(log, "captions.tsv:7: expected path"));
    free(log), free(a), free(b);
    fx_rmtree(dir);
    free(dir);
}

static void test_import_coco(void **state) {
    (void)state;
    char *dir = fx_tmpdir("imp");
    mkdir(fx_path("%s/val2017", dir), 0755);
    put_jpg(fx_path("%s/val2017/000000000139.jpg", dir), 1);
    put_png(fx_path("%s/val2017/000000000285.png", dir), 2);
    const char *json =
        "{\"info\": {}, \"images\": [{\"id\": 139, \"file_name\": \"000000000139.jpg\"},"
        " {\"id\": 285, \"file_name\": \"000000000285.png\"}],"
        " \"annotations\": [{\"image_id\": 285, \"id\": 7, \"caption\": \"A big bear. \"},"
        " {\"image_id\": 139, \"id\": 9, \"caption\": \"A living room.\"},"
        " {\"image_id\": 285, \"id\": 12, \"caption\": \"Brown bear in grass\"},"
        " {\"image_id\": 1, \"id\": 13, \"caption\": \"no such image\"}]}";
    put_text(fx_path("%s/captions_val2017.json", dir), json);
    ImportOptions o;
    import_options_default(&o);
    o.from = fx_path("%s/captions_val2017.json", dir);
    o.images_dir = fx_path("%s/val2017", dir);
    o.out_pattern = fx_path("%s/coco-%%06d.tar", dir);
    ImportResult r;
    assert_int_equal(run_import(&o, &r, fx_path("%s/log", dir)), 0);
    assert_int_equal(r.written, 3);
    assert_int_equal(r.skipped, 1);
    char *bear = strdup(fx_path("%s/val2017/000000000285.png", dir));
    char *room = strdup(fx_path("%s/val2017/000000000139.jpg", dir));
    Want w[] = {{"285_7", "A big bear.", bear, -1},
                {"139_9", "A living room.", room, -1},
                {"285_12", "Brown bear in grass", bear, -1}};
    expect_shards(fx_path("%s/coco-000000.tar", dir), w, 3, 1);
    // not COCO: a clear error
    put_text(fx_path("%s/other.json", dir), "{\"a\": 1}");
    o.from = fx_path("%s/other.json", dir);
    o.out_pattern = fx_path("%s/x-%%d.tar", dir);
    char err[512];
    assert_int_not_equal(import_shards(&o, &r, err, sizeof(err)), 0);
    assert_non_null(strstr(err, "not a COCO captions file"));
    free(bear), free(room);
    fx_rmtree(dir);
    free(dir);
}

static void test_mvsa_rules(void **state) {
    (void)state;
    assert_int_equal(mvsa_class("negative"), 0);
    assert_int_equal(mvsa_class(" Neutral\n"), 1);
    assert_int_equal(mvsa_class("positive"), 2);
    assert_int_equal(mvsa_class("happy"), -1);
    // text, image → class: equal → it; one neutral → the other; positive vs negative → dropped
    int want[3][3] = {{0, 0, -1}, {0, 1, 2}, {-1, 2, 2}};
    for (int t = 0; t < 3; t++)
        for (int i = 0; i < 3; i++)
            assert_int_equal(mvsa_resolve(t, i), want[t][i]);
    assert_int_equal(mvsa_majority(2, 2, 0), 2);
    assert_int_equal(mvsa_majority(2, 0, 2), 2);
    assert_int_equal(mvsa_majority(0, 1, 1), 1);
    assert_int_equal(mvsa_majority(0, 1, 2), -1);
}

static void make_post(const char *data, int id, const char *text) {
    put_jpg(fx_path("%s/%d.jpg", data, id), (uint32_t)id);
    put_text(fx_path("%s/%d.txt", data, id), text);
}

static void test_import_mvsa(void **state) {
    (void)state;
    char *dir = fx_tmpdir("imp");
    char *single = strdup(fx_path("%s/MVSA_Single", dir)),
         *data = strdup(fx_path("%s/data", single));
    mkdir(single, 0755), mkdir(data, 0755);
    for (int id = 1; id <= 5; id++)
        make_post(data, id, fx_path("post %d text\n", id));
    put_text(fx_path("%s/3.txt", data), "caf\xe9 cr\xe8me"); // Latin-1 bytes
    put_text(fx_path("%s/labelResultAll.txt", single),
             "ID\ttext,image\n"
             "1\tpositive,positive\n"
             "2\tpositive,negative\n"
             "3\tneutral,negative\n"
             "4\tnegative,neutral\n"
             "5\tneutral,neutral\n"
             "6\tpositive,neutral\n"); // no files for 6
    ImportOptions o;
    import_options_default(&o);
    o.from = single, o.out_pattern = fx_path("%s/single-%%06d.tar", dir);
    ImportResult r;
    assert_int_equal(run_import(&o, &r, fx_path("%s/log", dir)), 0);
    assert_int_equal(r.written, 4);
    assert_int_equal(r.mvsa_conflicts, 1);
    assert_int_equal(r.labels[0], 2);
    assert_int_equal(r.labels[1], 1);
    assert_int_equal(r.labels[2], 1);
    char *src[6];
    for (int i = 1; i <= 5; i++)
        src[i] = strdup(fx_path("%s/%d.jpg", data, i));
    Want w[] = {{"1", "post 1 text", src[1], 2},
                {"3", "caf\xc3\xa9 cr\xc3\xa8me", src[3], 0},
                {"4", "post 4 text", src[4], 0},
                {"5", "post 5 text", src[5], 1}};
    expect_shards(fx_path("%s/single-000000.tar", dir), w, 4, 1);
    char *log = fx_slurp(fx_path("%s/log", dir));
    assert_non_null(strstr(log, "post 2: text positive vs image negative"));
    assert_non_null(strstr(log, "6.txt"));
    free(log);

    // MVSA-Multiple: three annotators, majority per modality first
    char *multi = strdup(fx_path("%s/MVSA", dir)), *mdata = strdup(fx_path("%s/data", multi));
    mkdir(multi, 0755), mkdir(mdata, 0755);
    for (int id = 1; id <= 4; id++)
        make_post(mdata, id, "tweet");
    put_text(fx_path("%s/labelResultAll.txt", multi),
             "ID\ttext,image\ttext,image\ttext,image\n"
             "1\tpositive,positive\tpositive,neutral\tnegative,positive\n"   // pos, pos → 2
             "2\tpositive,neutral\tnegative,neutral\tneutral,neutral\n"      // no text majority
             "3\tnegative,neutral\tnegative,neutral\tneutral,positive\n"     // neg, neu → 0
             "4\tpositive,negative\tpositive,negative\tneutral,negative\n"); // pos vs neg
    o.from = multi, o.out_pattern = fx_path("%s/multi-%%06d.tar", dir);
    assert_int_equal(run_import(&o, &r, fx_path("%s/log", dir)), 0);
    assert_int_equal(r.written, 2);
    assert_int_equal(r.mvsa_no_majority, 1);
    assert_int_equal(r.mvsa_conflicts, 1);
    char *m1 = strdup(fx_path("%s/1.jpg", mdata)), *m3 = strdup(fx_path("%s/3.jpg", mdata));
    Want wm[] = {{"1", "tweet", m1, 2}, {"3", "tweet", m3, 0}};
    expect_shards(fx_path("%s/multi-000000.tar", dir), wm, 2, 1);
    free(m1), free(m3);
    for (int i = 1; i <= 5; i++)
        free(src[i]);
    free(single), free(data), free(multi), free(mdata);
    fx_rmtree(dir);
    free(dir);
}

static void test_import_errors(void **state) {
    (void)state;
    char *dir = fx_tmpdir("imp");
    ImportOptions o;
    import_options_default(&o);
    ImportResult r;
    char err[512];
    o.from = fx_path("%s/nothing-here", dir), o.out_pattern = fx_path("%s/x-%%d.tar", dir);
    assert_int_not_equal(import_shards(&o, &r, err, sizeof(err)), 0);
    assert_non_null(strstr(err, "nothing-here"));
    o.from = dir, o.out_pattern = fx_path("%s/x.tar", dir);
    assert_int_not_equal(import_shards(&o, &r, err, sizeof(err)), 0);
    assert_non_null(strstr(err, "integer conversion"));
    o.out_pattern = fx_path("%s/x-%%d.tar", dir); // an empty folder: nothing to write
    assert_int_not_equal(import_shards(&o, &r, err, sizeof(err)), 0);
    assert_non_null(strstr(err, "no sample"));
    fx_rmtree(dir);
    free(dir);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_import_dir),  cmocka_unit_test(test_import_tsv),
        cmocka_unit_test(test_import_coco), cmocka_unit_test(test_mvsa_rules),
        cmocka_unit_test(test_import_mvsa), cmocka_unit_test(test_import_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
