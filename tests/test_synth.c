// tijepa synth: scenes, captions that match them, labels, drawing, bit-identical shards.
#include <ctype.h>

#include "shards_fixtures.h"

static void test_scenes_and_captions(void **state) {
    (void)state;
    int shapes[SYNTH_SHAPES] = {0}, colours[SYNTH_COLOURS] = {0}, counts[4] = {0};
    int relations = 0, sizes = 0, checked_relations = 0, distinct = 0;
    enum { N = 3000 };
    static char seen[N][256];
    for (int i = 0; i < N; i++) {
        SynthSample s, again;
        synth_sample(&s, 42, 0, i);
        synth_sample(&again, 42, 0, i);
        assert_memory_equal(&s, &again, sizeof(s)); // a function of (seed, split, index)
        assert_true(s.n_objects >= 1 && s.n_objects <= 3);
        counts[s.n_objects]++;
        assert_true(utf8_valid(s.caption, strlen(s.caption)));
        assert_true(strlen(s.caption) > 5);
        int largest = 0;
        for (int k = 0; k < s.n_objects; k++)
            if (s.objects[k].large) {
                largest = k;
                break;
            }
        assert_int_equal(s.label, s.objects[largest].colour);
        for (int k = 0; k < s.n_objects; k++) {
            const SynthObject *o = &s.objects[k];
            shapes[o->shape]++, colours[o->colour]++;
            for (int m = 0; m < k; m++) // distinct cells
                assert_false(o->row == s.objects[m].row && o->col == s.objects[m].col);
            char phrase[64]; // every object is named by colour and shape
            snprintf(phrase, sizeof(phrase), "%s %s", SYNTH_COLOUR_NAMES[o->colour],
                     SYNTH_SHAPE_NAMES[o->shape]);
            if (!strstr(s.caption, phrase)) fail_msg("'%s' lacks '%s'", s.caption, phrase);
        }
        const char *rel[] = {" above ", " over ", " below ", " under ", " left of ", " right of "};
        int r = -1;
        for (int k = 0; k < 6; k++)
            if (strstr(s.caption, rel[k])) r = k;
        relations += r >= 0;
        sizes += strstr(s.caption, "small") || strstr(s.caption, "large") ||
                 strstr(s.caption, "big") || strstr(s.caption, "little");
        if (r >= 0) assert_true(s.n_objects >= 2);
        // the relation is true of the two objects around it (two-object scenes)
        if (r >= 0 && s.n_objects == 2) {
            char pa[64], pb[64];
            const SynthObject *A = &s.objects[0], *B = &s.objects[1];
            snprintf(pa, sizeof(pa), "%s %s", SYNTH_COLOUR_NAMES[A->colour],
                     SYNTH_SHAPE_NAMES[A->shape]);
            snprintf(pb, sizeof(pb), "%s %s", SYNTH_COLOUR_NAMES[B->colour],
                     SYNTH_SHAPE_NAMES[B->shape]);
            if (strcmp(pa, pb)) {
                const SynthObject *first = strstr(s.caption, pa) < strstr(s.caption, pb) ? A : B;
                const SynthObject *second = first == A ? B : A;
                int ok = r <= 1   ? first->row < second->row
                         : r <= 3 ? first->row > second->row
                         : r == 4 ? first->col < second->col
                                  : first->col > second->col;
                if (!ok) fail_msg("relation wrong in '%s'", s.caption);
                checked_relations++;
            }
        }
        int dup = 0;
        for (int k = 0; k < distinct && !dup; k++)
            dup = !strcmp(seen[k], s.caption);
        if (!dup) snprintf(seen[distinct++], 256, "%s", s.caption);
        // val samples differ from train samples of the same index
        SynthSample v;
        synth_sample(&v, 42, 1, i);
        assert_string_equal(v.key, fx_path("val-%07d", i));
        assert_string_equal(s.key, fx_path("train-%07d", i));
    }
    for (int k = 0; k < SYNTH_SHAPES; k++)
        assert_true(shapes[k] > 100);
    for (int k = 0; k < SYNTH_COLOURS; k++)
        assert_true(colours[k] > 100);
    for (int k = 1; k <= 3; k++)
        assert_true(counts[k] > N / 5);
    assert_true(relations > N / 5);
    assert_true(checked_relations > 100);
    assert_true(sizes > N / 3);
    assert_true(distinct > N * 8 / 10);
    SynthSample other;
    synth_sample(&other, 43, 0, 0);
    assert_string_not_equal(other.caption, seen[0]);
}

// Each object's centre pixel has its colour; empty cells show the grey background.
static void test_drawing(void **state) {
    (void)state;
    int sizes[] = {32, 64};
    for (int z = 0; z < 2; z++)
        for (int aa = 0; aa < 2; aa++)
            for (int i = 0; i < 200; i++) {
                int size = sizes[z];
                SynthSample s;
                synth_sample(&s, 1, 0, i);
                uint8_t *rgb = malloc((size_t)size * size * 3);
                SynthStyle st = {size, aa, 0, 0};
                synth_draw(rgb, &s, &st);
                int used[9] = {0};
                float cell = size / 3.0f;
                for (int k = 0; k < s.n_objects; k++) {
                    const SynthObject *o = &s.objects[k];
                    used[o->row * 3 + o->col] = 1;
                    int x = (int)((o->col + 0.5f) * cell), y = (int)((o->row + 0.5f) * cell);
                    assert_memory_equal(rgb + ((size_t)y * size + x) * 3,
                                        SYNTH_COLOUR_RGB[o->colour], 3);
                }
                for (int c = 0; c < 9; c++) {
                    if (used[c]) continue;
                    int x = (int)((c % 3 + 0.5f) * cell), y = (int)((c / 3 + 0.5f) * cell);
                    const uint8_t *p = rgb + ((size_t)y * size + x) * 3;
                    assert_true(p[0] == p[1] && p[1] == p[2] && p[0] >= 100 && p[0] < 140);
                }
                free(rgb);
            }
}

// --flat-background: every empty pixel is grey 120. --noise A: each byte within A of the clean
// drawing, deviations that use the whole range, the same bytes on every call, and other bytes for
// another sample with the same scene.
static void test_style_background_and_noise(void **state) {
    (void)state;
    enum { SIZE = 32, N = SIZE * SIZE * 3, AMP = 24 };
    uint8_t clean[N], flat[N], noisy[N], again[N];
    int seen_min = 0, seen_max = 0, changed = 0, diff_other = 0;
    for (int i = 0; i < 50; i++) {
        SynthSample s;
        synth_sample(&s, 7, 0, i);
        SynthStyle st;
        synth_style_default(&st, SIZE);
        st.antialias = 0; // every pixel is then either an object's colour or the background
        synth_draw(clean, &s, &st);
        st.flat_background = 1;
        synth_draw(flat, &s, &st);
        int background = 0;
        for (int p = 0; p < SIZE * SIZE; p++) {
            const uint8_t *c = clean + 3 * p, *f = flat + 3 * p;
            if (f[0] == 120 && f[1] == 120 && f[2] == 120 && c[0] == c[1] && c[1] == c[2] &&
                c[0] >= 100 && c[0] < 140)
                background++;
            else
                assert_memory_equal(c, f, 3); // an object pixel: untouched
        }
        assert_true(background > SIZE * SIZE / 4); // at most 3 of the 9 cells hold an object
        st.antialias = 1;
        synth_draw(flat, &s, &st);
        st.noise = AMP;
        synth_draw(noisy, &s, &st);
        synth_draw(again, &s, &st);
        assert_memory_equal(noisy, again, N);
        for (int b = 0; b < N; b++) {
            int d = (int)noisy[b] - flat[b];
            if (flat[b] >= AMP && flat[b] <= 255 - AMP) { // away from clamping
                assert_true(d >= -AMP && d <= AMP);
                seen_min |= d == -AMP, seen_max |= d == AMP;
            }
            changed += d != 0;
        }
        SynthSample twin = s; // same scene and caption, another key: other noise
        snprintf(twin.key, sizeof(twin.key), "train-9999999");
        synth_draw(again, &twin, &st);
        diff_other += memcmp(noisy, again, N) != 0;
    }
    assert_true(seen_min && seen_max);
    assert_true(changed > 50 * N * 9 / 10); // P(d = 0) = 1/49
    assert_int_equal(diff_other, 50);
}

static void test_write_deterministic(void **state) {
    (void)state;
    char *dir = fx_tmpdir("synth");
    SynthOptions o;
    synth_options_default(&o);
    o.n_train = 45, o.n_val = 12, o.per_shard = 20, o.seed = 3;
    const char *runs[] = {"a", "b", "c"};
    for (int r = 0; r < 3; r++) {
        o.out_dir = fx_path("%s/%s", dir, runs[r]);
        o.seed = r == 2 ? 4 : 3;
        char err[512];
        if (synth_write(&o, err, sizeof(err))) fail_msg("%s", err);
    }
    const char *files[] = {"train-000000.tar", "train-000001.tar", "train-000002.tar",
                           "val-000000.tar", "vocab.txt"};
    for (size_t f = 0; f < 5; f++) {
        size_t n1, n2, n3;
        uint8_t *a = fx_read_file(fx_path("%s/a/%s", dir, files[f]), &n1);
        uint8_t *b = fx_read_file(fx_path("%s/b/%s", dir, files[f]), &n2);
        uint8_t *c = fx_read_file(fx_path("%s/c/%s", dir, files[f]), &n3);
        assert_int_equal(n1, n2);
        assert_memory_equal(a, b, n1);
        if (f == 0) assert_true(n1 != n3 || memcmp(a, c, n1)); // another seed, other data
        free(a), free(b), free(c);
    }
    assert_int_not_equal(access(fx_path("%s/a/train-000003.tar", dir), F_OK), 0);
    assert_int_not_equal(access(fx_path("%s/a/val-000001.tar", dir), F_OK), 0);
    // read back: keys, captions, labels, json and pixels are the generated ones
    char err[512];
    Tokenizer *tok = tokenizer_load(fx_path("%s/a/vocab.txt", dir), err, sizeof(err));
    assert_non_null(tok);
    int index = 0;
    for (int shard = 0; shard < 3; shard++) {
        TarReader *tr =
            tar_reader_open(fx_path("%s/a/train-%06d.tar", dir, shard), err, sizeof(err));
        TarSample t;
        while (tar_reader_next(tr, &t, err, sizeof(err)) == 1) {
            SynthSample s;
            synth_sample(&s, 3, 0, index);
            assert_string_equal(t.key, s.key);
            assert_string_equal(t.caption, s.caption);
            int label;
            assert_int_equal(sample_check(&t, 1 << 20, &label, NULL, NULL, NULL, 0), SAMPLE_OK);
            assert_int_equal(label, s.label);
            char *json = synth_json(&s);
            assert_string_equal(t.json, json);
            assert_non_null(strstr(json, "\"label_name\""));
            free(json);
            ImageU8 img;
            assert_int_equal(
                image_decode(&img, t.image, t.image_len, 1 << 20, "x", err, sizeof(err)), 0);
            assert_int_equal(img.width, 32);
            uint8_t want[32 * 32 * 3];
            SynthStyle st;
            synth_style_default(&st, 32);
            synth_draw(want, &s, &st);
            assert_memory_equal(img.rgb, want, sizeof(want));
            image_free(&img);
            int32_t ids[64];
            int n_unk = -1;
            assert_true(tokenizer_encode(tok, t.caption, ids, NULL, 64, &n_unk, err, sizeof(err)) >
                        2);
            assert_int_equal(n_unk, 0); // the written vocabulary covers every caption
            index++;
        }
        tar_reader_close(tr);
    }
    assert_int_equal(index, 45);
    tokenizer_free(tok);
    // bad options
    o.image_size = 2;
    assert_int_not_equal(synth_write(&o, err, sizeof(err)), 0);
    assert_non_null(strstr(err, "image size"));
    synth_options_default(&o);
    o.out_dir = "/proc/no-such-place/x";
    assert_int_not_equal(synth_write(&o, err, sizeof(err)), 0);
    assert_non_null(strstr(err, "/proc/no-such-place"));
    fx_rmtree(dir);
    free(dir);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scenes_and_captions),
        cmocka_unit_test(test_drawing),
        cmocka_unit_test(test_style_background_and_noise),
        cmocka_unit_test(test_write_deterministic),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
