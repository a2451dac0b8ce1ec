// tijepa data stats: exact counts on a hand-made dataset holding every kind of bad input once,
// duplicates, labels and unknown tokens; the JSON report.
#include <cjson/cJSON.h>

#include "shards_fixtures.h"

static void test_stats_counts(void **state) {
    (void)state;
    char *dir = fx_tmpdir("stats");
    size_t an, bn, cn, jn;
    uint8_t *a = fx_png(8, 6, 1, &an), *b = fx_png(8, 6, 2, &bn);
    uint8_t *j = fx_jpeg(16, 8, 4, &jn);
    uint8_t *corrupt = fx_png(8, 8, 5, &cn);
    for (size_t i = 41; i < cn - 12; i++)
        corrupt[i] ^= 0x5A;
    size_t hn;
    uint8_t *huge = fx_png(8, 8, 6, &hn);
    const uint8_t big[8] = {0, 0, 0x4E, 0x20, 0, 0, 0x4E, 0x20}; // 20000 × 20000
    memcpy(huge + 16, big, 8);
    size_t c_len;
    uint8_t *c2 = fx_png(12, 10, 3, &c_len);
    FxMember m[] = {
        {"s1.png", a, an},
        {"s1.txt", "a red circle", 0},
        {"s1.cls", "0", 0},
        {"s2.png", b, bn},
        {"s2.txt", "a red circle", 0},
        {"s2.cls", "0", 0},
        {"s3.png", a, an},
        {"s3.txt", "a blue square on the left of a green triangle", 0},
        {"s3.cls", "1", 0},
        {"s4.jpg", j, jn},
        {"s4.txt", "an \xcf\x89mega", 0},
        {"s4.cls", "7", 0},
        {"s5.png", c2, c_len},
        {"s5.txt", "one", 0},
        {"s5.junk", "x", 0},
        {"bad1.png", "text", 0},
        {"bad1.txt", "x", 0},
        {"bad2.png", a, 20},
        {"bad2.txt", "x", 0},
        {"bad3.png", huge, hn},
        {"bad3.txt", "x", 0},
        {"bad4.png", a, an},
        {"bad5.png", a, an},
        {"bad5.txt", "\t", 0},
        {"bad6.png", a, an},
        {"bad6.txt", "\xff", 0},
        {"bad7.png", a, an},
        {"bad7.txt", "x", 0},
        {"bad7.cls", "1.5", 0},
        {"bad8.png", corrupt, cn},
        {"bad8.txt", "x", 0},
        {"bad9.txt", "x", 0},
    };
    fx_tar(fx_path("%s/a.tar", dir), m, (int)(sizeof(m) / sizeof(m[0])));
    fx_tar(fx_path("%s/b.tar", dir), NULL, 0); // empty
    FxMember t[] = {{"t1.png", a, an},
                    {"t1.txt", "truncated shard sample", 0},
                    {"t2.png", b, bn},
                    {"t2.txt", "cut", 0}};
    fx_tar(fx_path("%s/c.tar", dir), t, 4);
    fx_truncate(fx_path("%s/c.tar", dir), 0.3);
    const char *caps[] = {"a red circle", "a blue square on the left of a green triangle", "one"};
    fx_vocab(fx_path("%s/vocab.txt", dir), caps, 3);
    char err[1024];
    Tokenizer *tok = tokenizer_load(fx_path("%s/vocab.txt", dir), err, sizeof(err));
    DataStats st;
    FILE *log = fopen(fx_path("%s/log", dir), "w");
    assert_int_equal(data_stats_compute(&st, dir, tok, 1 << 20, log, err, sizeof(err)), 0);
    fclose(log);
    assert_int_equal(st.shards, 3);
    assert_int_equal(st.shards_empty, 1);
    assert_int_equal(st.shards_damaged, 1);
    assert_int_equal(st.samples_usable, 5);
    for (int p = SAMPLE_NO_IMAGE; p < SAMPLE_PROBLEM_COUNT; p++) {
        if (st.problems[p] != 1) // each problem planted once
            fail_msg("%s: %lld", sample_problem_name((SampleProblem)p), (long long)st.problems[p]);
    }
    assert_int_equal(st.samples_read, 5 + 9);
    assert_int_equal(st.members_ignored, 1);
    assert_int_equal(st.duplicate_captions, 1); // s2 repeats s1
    assert_int_equal(st.distinct_captions, 4);
    assert_int_equal(st.duplicate_images, 1); // s3 has the pixels of s1
    assert_string_equal(st.top_caption[0], "a red circle");
    assert_int_equal(st.top_caption_count[0], 2);
    assert_int_equal(st.n_labels, 3);
    assert_int_equal(st.label_values[0], 0);
    assert_int_equal(st.label_counts[0], 2);
    assert_int_equal(st.label_values[2], 7);
    assert_int_equal(st.unlabelled, 1);
    assert_int_equal(st.width_min, 8);
    assert_int_equal(st.width_max, 16);
    assert_int_equal(st.tokenized, 1);
    assert_true(st.unk_tokens >= 1); // "ω" is not in the vocabulary
    assert_int_equal(st.len_min, 1);
    assert_true(st.len_max >= 10);
    int64_t total = 0;
    for (int k = 0; k < DATA_STATS_LEN_BINS; k++)
        total += st.len_hist[k];
    assert_int_equal(total, 5);
    // report and JSON
    char *txt = strdup(fx_path("%s/report.txt", dir));
    FILE *out = fopen(txt, "w");
    data_stats_print(&st, out);
    fclose(out);
    char *report = fx_slurp(txt);
    assert_non_null(strstr(report, "decode_failed"));
    assert_non_null(strstr(report, "\"a red circle\""));
    assert_non_null(strstr(report, "[UNK] share"));
    free(report);
    assert_int_equal(data_stats_write_json(&st, fx_path("%s/stats.json", dir), err, sizeof(err)),
                     0);
    char *json = fx_slurp(fx_path("%s/stats.json", dir));
    cJSON *root = cJSON_Parse(json);
    assert_non_null(root);
    assert_int_equal(cJSON_GetObjectItem(root, "samples_usable")->valueint, 5);
    assert_int_equal(
        cJSON_GetObjectItem(cJSON_GetObjectItem(root, "problems"), "bad_utf8")->valueint, 1);
    assert_int_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(root, "labels"), "7")->valueint, 1);
    cJSON_Delete(root);
    free(json), free(txt);
    data_stats_free(&st);
    // without a vocabulary: lengths in words
    assert_int_equal(
        data_stats_compute(&st, fx_path("%s/a.tar", dir), NULL, 1 << 20, NULL, err, sizeof(err)),
        0);
    assert_int_equal(st.tokenized, 0);
    assert_int_equal(st.len_min, 1);
    assert_int_equal(st.len_max, 10);
    data_stats_free(&st);
    assert_int_not_equal(
        data_stats_compute(&st, fx_path("%s/none.tar", dir), NULL, 1 << 20, NULL, err, sizeof(err)),
        0);
    tokenizer_free(tok);
    free(a), free(b), free(j), free(corrupt), free(huge), free(c2);
    fx_rmtree(dir);
    free(dir);
}

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_stats_counts)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
