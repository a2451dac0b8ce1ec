// Evaluation metrics and the linear probe (model.h section 8) on hand-made inputs with known
// answers: ranks with ties and NaN, recalls, median ranks, accuracy, per-class and weighted F1;
// the probe on linearly separable features (100%) and on random labels (near chance).
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "model.h"

#define NEAR(a, b) assert_true(fabs((double)(a) - (double)(b)) < 1e-9)

// A hand-made 3×3 matrix, E[i][j] = E(image i, caption j), with one tie.
static void test_ranks_small(void **state) {
    (void)state;
    const float E[9] = {0.1f, 0.5f, 0.3f, //
                        0.2f, 0.4f, 0.1f, //
                        0.9f, 0.4f, 0.2f};
    int t2i[3], i2t[3];
    retrieval_ranks(t2i, i2t, E, 3);
    // caption 0: column (0.1, 0.2, 0.9) → 1; caption 1: (0.5, 0.4*, 0.4) tie with image 2 → 2;
    // caption 2: (0.3, 0.1, 0.2*) → 2
    assert_int_equal(t2i[0], 1);
    assert_int_equal(t2i[1], 2);
    assert_int_equal(t2i[2], 2);
    // image 0: row (0.1*, 0.5, 0.3) → 1; image 1: (0.2, 0.4*, 0.1) → 3; image 2: (0.9, 0.4, 0.2*) →
    // 1
    assert_int_equal(i2t[0], 1);
    assert_int_equal(i2t[1], 3);
    assert_int_equal(i2t[2], 1);
    RetrievalScores a, b;
    retrieval_scores(&a, &b, E, 3);
    NEAR(a.r1, 1.0 / 3);
    NEAR(a.r5, 1.0);
    NEAR(a.r10, 1.0);
    NEAR(a.median_rank, 2.0);
    NEAR(a.mean_rank, 5.0 / 3);
    NEAR(b.r1, 2.0 / 3);
    NEAR(b.median_rank, 1.0);
    NEAR(b.mean_rank, 5.0 / 3);
}

// Pessimistic ties: a constant matrix ranks every correct item last; a NaN counts against it.
static void test_ties_and_nan(void **state) {
    (void)state;
    enum { N = 12 };
    float E[N * N];
    for (int i = 0; i < N * N; i++)
        E[i] = 0.25f;
    RetrievalScores a, b;
    retrieval_scores(&a, &b, E, N);
    NEAR(a.r1, 0);
    NEAR(a.r5, 0);
    NEAR(a.r10, 0);
    NEAR(a.median_rank, N);
    NEAR(b.median_rank, N);
    // perfect diagonal, then a NaN correct energy for caption 3 and a NaN rival for caption 5
    for (int i = 0; i < N; i++)
        for (int j = 0; j < N; j++)
            E[i * N + j] = i == j ? 0.0f : 1.0f;
    retrieval_scores(&a, &b, E, N);
    NEAR(a.r1, 1);
    NEAR(a.median_rank, 1);
    NEAR(b.r1, 1);
    E[3 * N + 3] = NAN;
    E[7 * N + 5] = NAN;
    int t2i[N];
    retrieval_ranks(t2i, NULL, E, N);
    assert_int_equal(t2i[3], N);
    assert_int_equal(t2i[5], 2);
    assert_int_equal(t2i[0], 1);
}

// Known ranks: column j holds exactly (j mod 13) rivals below the correct energy.
static void test_recall_and_median(void **state) {
    (void)state;
    enum { N = 20 };
    float E[N * N];
    int want[N];
    for (int j = 0; j < N; j++) {
        int below = j % 13, placed = 0;
        for (int i = 0; i < N; i++) {
            if (i == j)
                E[i * N + j] = 0.5f;
            else
                E[i * N + j] = placed++ < below ? 0.1f + 0.01f * i : 0.9f;
        }
        want[j] = 1 + below;
    }
    int t2i[N];
    retrieval_ranks(t2i, NULL, E, N);
    int r1 = 0, r5 = 0, r10 = 0;
    double mean = 0;
    for (int j = 0; j < N; j++) {
        assert_int_equal(t2i[j], want[j]);
        r1 += want[j] <= 1;
        r5 += want[j] <= 5;
        r10 += want[j] <= 10;
        mean += want[j];
    }
    RetrievalScores a;
    retrieval_scores_from_ranks(&a, t2i, N);
    NEAR(a.r1, r1 / (double)N);
    NEAR(a.r5, r5 / (double)N);
    NEAR(a.r10, r10 / (double)N);
    NEAR(a.mean_rank, mean / N);
    // ranks 1..13 then 1..7: sorted, the 10th and 11th of 20 are 5 and 6
    NEAR(a.median_rank, 5.5);
    // even count: mean of the two middle ranks; odd count: the middle one
    const int even[6] = {6, 1, 3, 2, 6, 5}, odd[5] = {5, 5, 1, 4, 2};
    retrieval_scores_from_ranks(&a, even, 6);
    NEAR(a.median_rank, 4.0); // sorted 1 2 3 5 6 6
    NEAR(a.r1, 1.0 / 6);
    NEAR(a.r5, 4.0 / 6);
    NEAR(a.r10, 1.0);
    retrieval_scores_from_ranks(&a, odd, 5);
    NEAR(a.median_rank, 4.0);
    NEAR(retrieval_chance_recall(1, 256), 1.0 / 256);
    NEAR(retrieval_chance_recall(10, 4), 1.0);
}

static void test_accuracy_f1(void **state) {
    (void)state;
    const int truth[10] = {0, 0, 0, 1, 1, 2, 2, 2, 2, 2};
    const int pred[10] = {0, 1, 0, 1, 2, 2, 2, 0, 2, 1};
    NEAR(metric_accuracy(truth, pred, 10), 0.6);
    double f1[4], macro;
    int64_t sup[4];
    // class 0: TP 2 FP 1 FN 1 → 4/6; class 1: TP 1 FP 2 FN 1 → 2/5; class 2: TP 3 FP 1 FN 2 → 6/9
    double w = metric_f1(f1, sup, &macro, truth, pred, 10, 3);
    NEAR(f1[0], 4.0 / 6);
    NEAR(f1[1], 2.0 / 5);
    NEAR(f1[2], 6.0 / 9);
    assert_int_equal(sup[0], 3);
    assert_int_equal(sup[1], 2);
    assert_int_equal(sup[2], 5);
    NEAR(w, (3 * 4.0 / 6 + 2 * 2.0 / 5 + 5 * 6.0 / 9) / 10);
    NEAR(macro, (4.0 / 6 + 2.0 / 5 + 6.0 / 9) / 3);
    // a fourth class that never occurs: F1 0, support 0; weighted unchanged, macro over 4
    w = metric_f1(f1, sup, &macro, truth, pred, 10, 4);
    NEAR(f1[3], 0);
    assert_int_equal(sup[3], 0);
    NEAR(w, (3 * 4.0 / 6 + 2 * 2.0 / 5 + 5 * 6.0 / 9) / 10);
    NEAR(macro, (4.0 / 6 + 2.0 / 5 + 6.0 / 9) / 4);
    // perfect predictions; a class only predicted (support 0) weighs nothing
    NEAR(metric_f1(NULL, NULL, NULL, truth, truth, 10, 3), 1.0);
    const int t2[4] = {0, 0, 0, 0}, p2[4] = {0, 0, 0, 1};
    NEAR(metric_f1(f1, NULL, NULL, t2, p2, 4, 2), 6.0 / 7);
    NEAR(f1[1], 0);
    // labels out of range
    const int bad[2] = {0, 3};
    assert_true(metric_f1(NULL, NULL, NULL, bad, bad, 2, 3) < 0);
    assert_true(metric_f1(NULL, NULL, NULL, truth, pred, 0, 3) < 0);
}

// Features [n, dim] around class centroids: centroid c = 3·e_c (+ noise σ).
static void make_clusters(float *x, int *y, int n, int dim, int classes, const int *count,
                          float sigma, uint64_t seed) {
    Rng rng;
    rng_init(&rng, seed, 99, 0, 0);
    int i = 0;
    for (int c = 0; c < classes; c++)
        for (int k = 0; k < count[c] && i < n; k++, i++) {
            y[i] = c;
            for (int d = 0; d < dim; d++)
                x[(size_t)i * dim + d] = (d == c ? 3.0f : 0.0f) + sigma * rng_normal(&rng);
        }
}

static void test_probe_separable(void **state) {
    (void)state;
    enum { DIM = 16, C = 3 };
    // MVSA-Single-like size and imbalance: ~1750 training posts, 3 classes
    const int tr_count[C] = {1200, 400, 150}, te_count[C] = {100, 100, 100};
    int ntr = 1750, nte = 300;
    float *xtr = malloc(sizeof(float) * ntr * DIM), *xte = malloc(sizeof(float) * nte * DIM);
    int *ytr = malloc(sizeof(int) * ntr), *yte = malloc(sizeof(int) * nte),
        *pred = malloc(sizeof(int) * nte);
    make_clusters(xtr, ytr, ntr, DIM, C, tr_count, 0.3f, 1);
    make_clusters(xte, yte, nte, DIM, C, te_count, 0.3f, 2);
    ProbeConfig pc;
    probe_config_default(&pc);
    assert_int_equal(pc.epochs, 50);
    assert_int_equal(pc.batch, 128);
    LinearProbe p;
    char err[256];
    assert_int_equal(probe_train(&p, xtr, ytr, ntr, DIM, C, &pc, err, sizeof(err)), 0);
    assert_int_equal(p.train_size, 3 * 1200); // every class up-sampled to the majority count
    probe_predict(pred, &p, xte, nte);
    print_message("separable: test accuracy %.4f, final training loss %.4f\n",
                  metric_accuracy(yte, pred, nte), p.final_loss);
    NEAR(metric_accuracy(yte, pred, nte), 1.0);
    NEAR(metric_f1(NULL, NULL, NULL, yte, pred, nte, C), 1.0);
    assert_true(p.final_loss < 0.5 * log((double)C)); // well below the chance loss log C

    // deterministic: the same inputs give the same weights bit for bit; another seed does not
    LinearProbe q;
    assert_int_equal(probe_train(&q, xtr, ytr, ntr, DIM, C, &pc, err, sizeof(err)), 0);
    assert_memory_equal(p.weight, q.weight, sizeof(float) * C * DIM);
    assert_memory_equal(p.bias, q.bias, sizeof(float) * C);
    probe_free(&q);
    pc.seed = 7;
    assert_int_equal(probe_train(&q, xtr, ytr, ntr, DIM, C, &pc, err, sizeof(err)), 0);
    assert_true(memcmp(p.weight, q.weight, sizeof(float) * C * DIM) != 0);
    probe_free(&q);
    // without balancing the epoch is the plain training set
    pc.balance = 0;
    assert_int_equal(probe_train(&q, xtr, ytr, ntr, DIM, C, &pc, err, sizeof(err)), 0);
    assert_int_equal(q.train_size, ntr);
    probe_free(&q);
    probe_free(&p);
    free(xtr);
    free(xte);
    free(ytr);
    free(yte);
    free(pred);
}

// Random features with random labels: nothing to learn, test accuracy near 1/classes.
static void test_probe_random_labels(void **state) {
    (void)state;
    enum { DIM = 16, C = 4, NTR = 600, NTE = 4000 };
    float *x = malloc(sizeof(float) * (NTR + NTE) * DIM);
    int *y = malloc(sizeof(int) * (NTR + NTE)), *pred = malloc(sizeof(int) * NTE);
    Rng rng;
    rng_init(&rng, 5, 99, 1, 0);
    for (int i = 0; i < (NTR + NTE) * DIM; i++)
        x[i] = rng_normal(&rng);
    for (int i = 0; i < NTR + NTE; i++)
        y[i] = (int)(rng_next(&rng) % C);
    ProbeConfig pc;
    probe_config_default(&pc);
    LinearProbe p;
    char err[256];
    assert_int_equal(probe_train(&p, x, y, NTR, DIM, C, &pc, err, sizeof(err)), 0);
    probe_predict(pred, &p, x + (size_t)NTR * DIM, NTE);
    double acc = metric_accuracy(y + NTR, pred, NTE);
    print_message("random labels: test accuracy %.4f (chance %.4f)\n", acc, 1.0 / C);
    // σ of the accuracy of a label-independent predictor: sqrt(0.25·0.75/4000) ≈ 0.007
    assert_true(fabs(acc - 1.0 / C) < 0.04);
    probe_free(&p);
    free(x);
    free(y);
    free(pred);
}

static void test_probe_errors(void **state) {
    (void)state;
    float x[4] = {1, 2, 3, NAN};
    int y[2] = {0, 2};
    ProbeConfig pc;
    probe_config_default(&pc);
    LinearProbe p;
    char err[256];
    assert_int_not_equal(probe_train(&p, x, y, 2, 2, 2, &pc, err, sizeof(err)), 0);
    assert_non_null(strstr(err, "label 2"));
    y[1] = 1;
    assert_int_not_equal(probe_train(&p, x, y, 2, 2, 2, &pc, err, sizeof(err)), 0);
    assert_non_null(strstr(err, "not finite"));
    assert_int_not_equal(probe_train(&p, x, y, 2, 2, 1, &pc, err, sizeof(err)), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ranks_small),       cmocka_unit_test(test_ties_and_nan),
        cmocka_unit_test(test_recall_and_median), cmocka_unit_test(test_accuracy_f1),
        cmocka_unit_test(test_probe_separable),   cmocka_unit_test(test_probe_random_labels),
        cmocka_unit_test(test_probe_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
