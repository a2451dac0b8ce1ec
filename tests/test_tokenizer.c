// WordPiece tokenizer (hand-checked ids with a tiny vocab), its errors, the vocabulary builder
// and `tijepa vocab`.
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
#include "launch.h"

static char tmpdir[] = "/tmp/tijepa_test_tokenizer_XXXXXX";

static void path_in_tmp(char *out, size_t n, const char *name) {
    snprintf(out, n, "%s/%s", tmpdir, name);
}

static void write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(text, 1, strlen(text), f), strlen(text));
    assert_int_equal(fclose(f), 0);
}

// ids:         0     1     2     3     4      5   6   7   8  9   10   11    12   13 14 15
static const char *TINY_VOCAB = "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nthe\ncat\nsat\non\nmat\nplay\n"
                                // 11     12   13 14 15  16   17  18      19      20 21 22
                                "##ing\n##ed\n,\n.\n!\ncafe\nun\n##want\n##able\na\nb\n##b\n"
                                // 23  24   25   26  27
                                "##a\n我\n爱\nσ\n##ς\n";

static Tokenizer *tiny_tokenizer(void) {
    char path[512], err[512];
    path_in_tmp(path, sizeof(path), "tiny_vocab.txt");
    write_file(path, TINY_VOCAB);
    Tokenizer *tok = tokenizer_load(path, err, sizeof(err));
    if (!tok) fail_msg("%s", err);
    return tok;
}

// Encodes text with max_len and checks the valid ids against want (terminated by -1), the
// padding, the mask and the [UNK] count.
static void check_encode(const Tokenizer *tok, const char *text, int max_len, const int *want,
                         int want_unk) {
    int32_t ids[256];
    uint8_t valid[256];
    char err[256];
    int n_unk = -1, n_want = 0;
    while (want[n_want] >= 0)
        n_want++;
    int n = tokenizer_encode(tok, text, ids, valid, max_len, &n_unk, err, sizeof(err));
    if (n != n_want) fail_msg("'%s': %d tokens, want %d", text, n, n_want);
    for (int i = 0; i < n; i++)
        if (ids[i] != want[i]) fail_msg("'%s': id %d is %d, want %d", text, i, ids[i], want[i]);
    for (int i = 0; i < max_len; i++) {
        assert_int_equal(valid[i], i < n);
        if (i >= n) assert_int_equal(ids[i], tokenizer_pad_id(tok));
    }
    assert_int_equal(n_unk, want_unk);
}

static void test_special_ids(void **state) {
    (void)state;
    Tokenizer *tok = tiny_tokenizer();
    assert_int_equal(tokenizer_vocab_size(tok), 28);
    assert_int_equal(tokenizer_pad_id(tok), 0);
    assert_int_equal(tokenizer_unk_id(tok), 1);
    assert_int_equal(tokenizer_cls_id(tok), 2);
    assert_int_equal(tokenizer_sep_id(tok), 3);
    assert_string_equal(tokenizer_token(tok, 11), "##ing");
    assert_string_equal(tokenizer_token(tok, 24), "我");
    assert_null(tokenizer_token(tok, 28));
    assert_null(tokenizer_token(tok, -1));
    tokenizer_free(tok);
}

static void test_hand_checked(void **state) {
    (void)state;
    Tokenizer *tok = tiny_tokenizer();
    check_encode(tok, "The cat sat.", 16, (int[]){2, 5, 6, 7, 14, 3, -1}, 0);
    check_encode(tok, "  THE\tcat\n\nsat  ", 16, (int[]){2, 5, 6, 7, 3, -1}, 0);
    check_encode(tok, "playing played", 16, (int[]){2, 10, 11, 10, 12, 3, -1}, 0);
    check_encode(tok, "unwantable", 16, (int[]){2, 17, 18, 19, 3, -1}, 0);
    check_encode(tok, "Café!", 16, (int[]){2, 16, 15, 3, -1}, 0);               // accent stripped
    check_encode(tok, "CAFE\xCC\x81,the", 16, (int[]){2, 16, 13, 5, 3, -1}, 0); // combining mark
    check_encode(tok, "dog", 16, (int[]){2, 1, 3, -1}, 1);
    check_encode(tok, "我爱cat", 16, (int[]){2, 24, 25, 6, 3, -1}, 0); // CJK split off
    check_encode(tok, "ab abb", 16, (int[]){2, 20, 22, 20, 22, 22, 3, -1}, 0);
    check_encode(tok, "bab", 16, (int[]){2, 21, 23, 22, 3, -1}, 0);
    check_encode(tok, "ac the", 16, (int[]){2, 1, 5, 3, -1}, 1); // no "##c": the whole word
    check_encode(tok,
                 "the\x01 c\x7f"
                 "at",
                 16, (int[]){2, 5, 6, 3, -1}, 0);                  // controls dropped
    check_encode(tok, "ΣΣ", 16, (int[]){2, 26, 27, 3, -1}, 0);     // final sigma: σς
    check_encode(tok, "[CLS]", 16, (int[]){2, 1, 1, 1, 3, -1}, 3); // "[" "cls" "]": text only
    tokenizer_free(tok);
}

static void test_long_words(void **state) {
    (void)state;
    Tokenizer *tok = tiny_tokenizer();
    char word[128];
    int want[128];
    memset(word, 'a', 100);
    word[100] = '\0';
    want[0] = 2, want[1] = 20; // a ##a ##a ... (100 characters: still WordPiece)
    for (int i = 2; i <= 100; i++)
        want[i] = 23;
    want[101] = 3, want[102] = -1;
    check_encode(tok, word, 128, want, 0);
    word[100] = 'a', word[101] = '\0'; // 101 characters: one [UNK]
    check_encode(tok, word, 128, (int[]){2, 1, 3, -1}, 1);
    char text[300];
    snprintf(text, sizeof(text), "the %s cat", word);
    check_encode(tok, text, 128, (int[]){2, 5, 1, 6, 3, -1}, 1);
    tokenizer_free(tok);
}

static void test_truncation_and_padding(void **state) {
    (void)state;
    Tokenizer *tok = tiny_tokenizer();
    const char *text = "the cat sat on the mat";
    check_encode(tok, text, 16, (int[]){2, 5, 6, 7, 8, 5, 9, 3, -1}, 0);
    check_encode(tok, text, 5, (int[]){2, 5, 6, 7, 3, -1}, 0);
    check_encode(tok, text, 8, (int[]){2, 5, 6, 7, 8, 5, 9, 3, -1}, 0);
    check_encode(tok, text, 2, (int[]){2, 3, -1}, 0);
    check_encode(tok, "dog dog dog dog", 4, (int[]){2, 1, 1, 3, -1}, 2); // [UNK]s kept only
    check_encode(tok, "playing", 3, (int[]){2, 10, 3, -1}, 0);           // cut inside a word
    check_encode(tok, "", 6, (int[]){2, 3, -1}, 0);
    check_encode(tok, " \t\n\x01", 6, (int[]){2, 3, -1}, 0);
    int32_t ids[4];
    char err[256] = "";
    assert_int_equal(tokenizer_encode(tok, "the", ids, NULL, 4, NULL, err, sizeof(err)), 3);
    assert_int_equal(ids[3], 0);
    assert_int_equal(tokenizer_encode(tok, "the", ids, NULL, 1, NULL, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "max_len"));
    tokenizer_free(tok);
}

static void test_invalid_utf8(void **state) {
    (void)state;
    Tokenizer *tok = tiny_tokenizer();
    const char *bad[] = {"\xff",        "the \xc0\x80", "\xed\xa0\x80", "\xf4\x90\x80\x80",
                         "cat\xe2\x82", "\x80",         "\xc3"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int32_t ids[8];
        uint8_t valid[8];
        char err[256] = "";
        int n_unk = 42;
        assert_int_equal(tokenizer_encode(tok, bad[i], ids, valid, 8, &n_unk, err, sizeof(err)),
                         -1);
        assert_non_null(strstr(err, "UTF-8"));
    }
    tokenizer_free(tok);
}

static void test_vocab_errors(void **state) {
    (void)state;
    char path[512], err[512];
    path_in_tmp(path, sizeof(path), "no_specials.txt");
    write_file(path, "[PAD]\n[UNK]\nthe\n");
    assert_null(tokenizer_load(path, err, sizeof(err)));
    assert_non_null(strstr(err, path));
    assert_non_null(strstr(err, "[CLS]"));
    assert_non_null(strstr(err, "[SEP]"));
    assert_null(strstr(err, "[PAD]"));

    path_in_tmp(path, sizeof(path), "does_not_exist.txt");
    assert_null(tokenizer_load(path, err, sizeof(err)));
    assert_non_null(strstr(err, path));

    path_in_tmp(path, sizeof(path), "empty.txt");
    write_file(path, "");
    assert_null(tokenizer_load(path, err, sizeof(err)));
    assert_non_null(strstr(err, "empty"));

    path_in_tmp(path, sizeof(path), "bad_utf8.txt");
    write_file(path, "[PAD]\n[UNK]\n[CLS]\n[SEP]\nca\xfft\n");
    assert_null(tokenizer_load(path, err, sizeof(err)));
    assert_non_null(strstr(err, "bad_utf8.txt:5"));

    // CRLF line ends, no final newline, a repeated token (the later id wins).
    path_in_tmp(path, sizeof(path), "crlf.txt");
    write_file(path, "[CLS]\r\n[SEP]\r\n[PAD]\r\n[UNK]\r\ncat\r\ncat\r\n\r\nsat");
    Tokenizer *tok = tokenizer_load(path, err, sizeof(err));
    if (!tok) fail_msg("%s", err);
    assert_int_equal(tokenizer_vocab_size(tok), 8);
    check_encode(tok, "cat sat", 6, (int[]){0, 5, 7, 1, -1}, 0);
    tokenizer_free(tok);
}

// ---------------------------------------------------------------------------------------------
// Vocabulary builder
// ---------------------------------------------------------------------------------------------

static const char *CAPTIONS[] = {
    "A red circle above a small blue square.",
    "a small GREEN triangle, left of the red circle!",
    "Café crème: naïve façade; déjà-vu",
    "two blue squares and one yellow star",
    "the red star is below the blue circle",
    "我爱北京天安门 and ΟΔΥΣΣΕΥΣ",
    "emoji 🐈 and ❤️ too (parentheses) [brackets]",
    "numbers 12 345 6.78 and symbols $ % & @",
};
#define N_CAPTIONS (sizeof(CAPTIONS) / sizeof(CAPTIONS[0]))

static char **read_lines(const char *path, int *n) {
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char **lines = NULL, buf[1024];
    *n = 0;
    while (fgets(buf, sizeof(buf), f)) {
        buf[strcspn(buf, "\n")] = '\0';
        lines = realloc(lines, (size_t)(*n + 1) * sizeof(char *));
        assert_non_null(lines);
        lines[(*n)++] = strdup(buf);
    }
    fclose(f);
    return lines;
}

static void free_lines(char **lines, int n) {
    for (int i = 0; i < n; i++)
        free(lines[i]);
    free(lines);
}

static int find_line(char **lines, int n, const char *s) {
    for (int i = 0; i < n; i++)
        if (!strcmp(lines[i], s)) return i;
    return -1;
}

static void test_vocab_builder_no_unk(void **state) {
    (void)state;
    char path[512], err[512];
    path_in_tmp(path, sizeof(path), "built_vocab.txt");
    VocabBuilder *vb = vocab_builder_new();
    assert_non_null(vb);
    for (size_t i = 0; i < N_CAPTIONS; i++)
        vocab_builder_add(vb, CAPTIONS[i]);
    vocab_builder_add(vb, "bad \xff utf-8");
    VocabBuilderStats st;
    vocab_builder_stats(vb, &st);
    assert_int_equal(st.captions, N_CAPTIONS + 1);
    assert_int_equal(st.invalid_utf8, 1);
    assert_true(st.distinct_chars > 20);
    if (vocab_builder_write(vb, path, 100000, err, sizeof(err))) fail_msg("%s", err);
    vocab_builder_free(vb);

    int n;
    char **lines = read_lines(path, &n);
    assert_int_equal(n, 5 + 2 * st.distinct_chars + st.distinct_words);
    const char *specials[] = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"};
    for (int i = 0; i < 5; i++)
        assert_string_equal(lines[i], specials[i]);
    // Characters, then their ## forms in the same order, then words by frequency.
    for (long i = 0; i < st.distinct_chars; i++) {
        char want[64];
        snprintf(want, sizeof(want), "##%s", lines[5 + i]);
        assert_string_equal(lines[5 + st.distinct_chars + i], want);
    }
    int first_word = 5 + 2 * (int)st.distinct_chars;
    // "and" 4 times, then four words 3 times each in byte order, then "small" and "star".
    const char *top[] = {"and", "blue", "circle", "red", "the", "small", "star"};
    for (int i = 0; i < 7; i++)
        assert_string_equal(lines[first_word + i], top[i]);
    assert_true(find_line(lines, n, "cafe") >= 0);
    assert_true(find_line(lines, n, "creme") >= 0);
    assert_true(find_line(lines, n, "οδυσσευς") >= 0); // lower-cased, final sigma
    assert_true(find_line(lines, n, "我") >= 0);
    assert_true(find_line(lines, n, "##我") >= 0);
    assert_int_equal(find_line(lines, n, "bad"), -1); // the invalid caption was skipped
    assert_int_equal(find_line(lines, n, "e"), 5);    // most frequent character, then "a"
    assert_int_equal(find_line(lines, n, "a"), 6);
    assert_int_equal(st.distinct_chars, 61);
    free_lines(lines, n);

    Tokenizer *tok = tokenizer_load(path, err, sizeof(err));
    if (!tok) fail_msg("%s", err);
    assert_int_equal(tokenizer_pad_id(tok), 0);
    const char *unseen_combinations[] = {"blue circle above the red square", "redblue", "thered"};
    for (size_t i = 0; i < N_CAPTIONS + 3; i++) {
        const char *text = i < N_CAPTIONS ? CAPTIONS[i] : unseen_combinations[i - N_CAPTIONS];
        int32_t ids[64];
        int n_unk = -1;
        int got = tokenizer_encode(tok, text, ids, NULL, 64, &n_unk, err, sizeof(err));
        assert_true(got > 2);
        if (n_unk != 0) fail_msg("'%s' gave %d [UNK]", text, n_unk);
    }
    tokenizer_free(tok);
}

static void test_vocab_builder_deterministic_and_size(void **state) {
    (void)state;
    char a[512], b[512], err[512];
    path_in_tmp(a, sizeof(a), "order_a.txt");
    path_in_tmp(b, sizeof(b), "order_b.txt");
    VocabBuilder *va = vocab_builder_new(), *vb = vocab_builder_new();
    for (size_t i = 0; i < N_CAPTIONS; i++) {
        vocab_builder_add(va, CAPTIONS[i]);
        vocab_builder_add(vb, CAPTIONS[N_CAPTIONS - 1 - i]);
    }
    assert_int_equal(vocab_builder_write(va, a, 60, err, sizeof(err)), 0);
    assert_int_equal(vocab_builder_write(vb, b, 60, err, sizeof(err)), 0);
    int na, nb;
    char **la = read_lines(a, &na), **lb = read_lines(b, &nb);
    assert_int_equal(na, 60);
    assert_int_equal(nb, 60);
    for (int i = 0; i < na; i++)
        assert_string_equal(la[i], lb[i]);
    free_lines(la, na);
    free_lines(lb, nb);

    // Size 5: the special tokens only; every word is then [UNK].
    assert_int_equal(vocab_builder_write(va, a, 5, err, sizeof(err)), 0);
    Tokenizer *tok = tokenizer_load(a, err, sizeof(err));
    if (!tok) fail_msg("%s", err);
    assert_int_equal(tokenizer_vocab_size(tok), 5);
    int32_t ids[8];
    int n_unk;
    assert_int_equal(tokenizer_encode(tok, "red circle", ids, NULL, 8, &n_unk, err, sizeof(err)),
                     4);
    assert_int_equal(n_unk, 2);
    tokenizer_free(tok);

    assert_int_not_equal(vocab_builder_write(va, a, 4, err, sizeof(err)), 0);
    assert_non_null(strstr(err, "special"));
    assert_int_not_equal(vocab_builder_write(va, "/nonexistent-dir/v.txt", 50, err, sizeof(err)),
                         0);
    assert_non_null(strstr(err, "/nonexistent-dir/v.txt"));
    vocab_builder_free(va);
    vocab_builder_free(vb);
}

// ---------------------------------------------------------------------------------------------
// tijepa vocab
// ---------------------------------------------------------------------------------------------

static int run_vocab(int argc, const char **argv) {
    return cmd_vocab(argc, (char **)argv);
}

static void test_cmd_vocab_captions(void **state) {
    (void)state;
    char captions[512], out[512], err[512];
    path_in_tmp(captions, sizeof(captions), "captions.txt");
    path_in_tmp(out, sizeof(out), "cmd_vocab.txt");
    FILE *f = fopen(captions, "w");
    assert_non_null(f);
    for (size_t i = 0; i < N_CAPTIONS; i++)
        fprintf(f, "%s\r\n", CAPTIONS[i]);
    fclose(f);
    const char *argv[] = {"vocab", "--captions", captions, "--out", out, "--size", "1000"};
    assert_int_equal(run_vocab(7, argv), TJ_EXIT_OK);
    Tokenizer *tok = tokenizer_load(out, err, sizeof(err));
    if (!tok) fail_msg("%s", err);
    for (size_t i = 0; i < N_CAPTIONS; i++) {
        int32_t ids[64];
        int n_unk = -1;
        assert_true(tokenizer_encode(tok, CAPTIONS[i], ids, NULL, 64, &n_unk, err, sizeof(err)) >
                    2);
        assert_int_equal(n_unk, 0);
    }
    tokenizer_free(tok);

    const char *no_out[] = {"vocab", "--captions", captions};
    assert_int_equal(run_vocab(3, no_out), TJ_EXIT_USAGE);
    const char *bad_size[] = {"vocab", "--captions", captions, "--out", out, "--size", "x"};
    assert_int_equal(run_vocab(7, bad_size), TJ_EXIT_USAGE);
    const char *unknown[] = {"vocab", "--frobnicate", "1", "--out", out};
    assert_int_equal(run_vocab(5, unknown), TJ_EXIT_USAGE);
    const char *missing[] = {"vocab", "--captions", "/nonexistent/captions.txt", "--out", out};
    assert_int_equal(run_vocab(5, missing), TJ_EXIT_ERROR);
    const char *help[] = {"vocab", "--help"};
    assert_int_equal(run_vocab(2, help), TJ_EXIT_OK);
}

static void test_cmd_vocab_data(void **state) {
    (void)state;
    char shard[512], out[512], err[512], spec[512];
    path_in_tmp(shard, sizeof(shard), "captions-000000.tar");
    path_in_tmp(out, sizeof(out), "data_vocab.txt");
    TarWriter *w = tar_writer_open(shard, err, sizeof(err));
    if (!w) fail_msg("%s", err);
    static const uint8_t fake_png[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
    for (int i = 0; i < 4; i++) {
        char key[16];
        snprintf(key, sizeof(key), "s%03d", i);
        TarSampleOut s = {.key = key,
                          .image = fake_png,
                          .image_len = 8,
                          .image_ext = "png",
                          .caption = i < 3 ? CAPTIONS[i] : NULL};
        if (tar_writer_add_sample(w, &s, err, sizeof(err))) fail_msg("%s", err);
    }
    if (tar_writer_close(w, err, sizeof(err))) fail_msg("%s", err);
    snprintf(spec, sizeof(spec), "%s/captions-{000000..000000}.tar", tmpdir);
    const char *argv[] = {"vocab", "--data", spec, "--out", out};
    assert_int_equal(run_vocab(5, argv), TJ_EXIT_OK);
    int n;
    char **lines = read_lines(out, &n);
    assert_true(find_line(lines, n, "circle") >= 0);     // captions 0 and 1
    assert_true(find_line(lines, n, "cafe") >= 0);       // caption 2
    assert_int_equal(find_line(lines, n, "yellow"), -1); // caption 3 was not written
    free_lines(lines, n);
    const char *missing[] = {"vocab", "--data", "/nonexistent/x-{0..3}.tar", "--out", out};
    assert_int_equal(run_vocab(5, missing), TJ_EXIT_ERROR);
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
        cmocka_unit_test(test_special_ids),
        cmocka_unit_test(test_hand_checked),
        cmocka_unit_test(test_long_words),
        cmocka_unit_test(test_truncation_and_padding),
        cmocka_unit_test(test_invalid_utf8),
        cmocka_unit_test(test_vocab_errors),
        cmocka_unit_test(test_vocab_builder_no_unk),
        cmocka_unit_test(test_vocab_builder_deterministic_and_size),
        cmocka_unit_test(test_cmd_vocab_captions),
        cmocka_unit_test(test_cmd_vocab_data),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
