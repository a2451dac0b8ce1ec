// The network beyond single kernels: presets, the parameter table, masks, negatives, schedules,
// bit-determinism of whole training steps, and the optimiser's decay rule.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "model.h"

static void test_presets(void **state) {
    (void)state;
    ModelShape s;
    char err[256];
    const char *names[] = {"tiny", "small", "base", "paper"};
    for (int i = 0; i < 4; i++) {
        assert_int_equal(model_preset(&s, names[i]), 0);
        assert_int_equal(model_shape_check(&s, err, sizeof(err)), 0);
    }
    assert_int_equal(model_preset(&s, "huge"), -1);
    model_preset(&s, "paper");
    assert_int_equal(s.image_size, 224);
    assert_int_equal(s.patch, 14);
    assert_int_equal(s.img_dim, 1280);
    assert_int_equal(s.txt_len, 77);
    assert_int_equal(s.vocab, 30522);
    assert_int_equal(s.batch, 26);
    model_preset(&s, "tiny");
    s.img_heads = 5; // 96 % 5 != 0
    assert_int_not_equal(model_shape_check(&s, err, sizeof(err)), 0);
    assert_non_null(strstr(err, "img_heads"));
}

static Model *tiny_model(ModelMode mode, float nce, int K, int batch) {
    ModelConfig cfg = {0};
    model_preset(&cfg.shape, "tiny");
    cfg.mode = mode;
    cfg.local_batch = batch;
    cfg.nce_weight = nce;
    cfg.negatives = K;
    cfg.temperature = 0.1f;
    char err[256];
    Model *m = model_new(&cfg, err, sizeof(err));
    assert_non_null(m);
    return m;
}

static void test_parameter_table(void **state) {
    (void)state;
    Model *m = tiny_model(MODE_PAPER, 0, 0, 2);
    int n;
    const TensorInfo *t = model_tensors(m, &n);
    size_t expect = 0;
    for (int i = 0; i < n; i++) {
        assert_int_equal(t[i].offset, expect); // contiguous, in order
        size_t numel = 1;
        for (int d = 0; d < t[i].ndim; d++)
            numel *= (size_t)t[i].shape[d];
        assert_int_equal(numel, t[i].numel);
        assert_int_equal(t[i].decay, t[i].ndim >= 2);
        expect += t[i].numel;
    }
    assert_int_equal(expect, model_num_params(m));
    // paper mode: ctx and pred train, the crosser alone is EMA-tracked
    int first = model_first_trainable_tensor(m);
    assert_string_equal(t[first].name, "ctx.img_proj.weight");
    assert_int_equal(model_trainable_offset(m), t[first].offset);
    assert_int_equal(model_ema_offset(m), t[first].offset);
    int pred = model_tensor_index(m, "pred.embed.weight");
    assert_true(pred > first);
    assert_int_equal(model_ema_count(m), t[pred].offset - t[first].offset);
    assert_true(model_tensor_index(m, "ctx.txt_proj.weight") < 0); // Dt == H: identity
    model_free(m);
    m = tiny_model(MODE_SCRATCH, 0, 0, 2);
    assert_int_equal(model_trainable_offset(m), 0);
    t = model_tensors(m, NULL);
    assert_int_equal(model_ema_offset(m),
                     t[model_tensor_index(m, "img.patch_embed.weight")].offset);
    model_free(m);
}

static void test_masks(void **state) {
    (void)state;
    int grid = 8, P = 64;
    MaskConfig mc;
    mask_config_default(&mc);
    MaskSet a, b;
    maskset_alloc(&a, grid);
    maskset_alloc(&b, grid);
    int differs = 0;
    for (int step = 0; step < 50; step++) {
        mask_sample(&a, &mc, grid, 3, (uint64_t)step);
        mask_sample(&b, &mc, grid, 3, (uint64_t)step);
        assert_int_equal(a.n_context, b.n_context);
        assert_memory_equal(a.context, b.context, sizeof(int) * (size_t)a.n_context);
        assert_memory_equal(a.target, b.target, sizeof(int) * (size_t)a.n_target);
        assert_true(a.n_context >= mc.min_keep);
        assert_true(a.n_target >= 1);
        // targets: union of 4 blocks of ≤ 0.2·P each (rounding may add a little)
        assert_true(a.n_target <= 4 * (int)(0.2 * P * 1.6) + 4);
        unsigned char seen[64] = {0};
        for (int i = 0; i < a.n_target; i++) {
            assert_true(a.target[i] >= 0 && a.target[i] < P);
            if (i) assert_true(a.target[i] > a.target[i - 1]);
            seen[a.target[i]] = 1;
        }
        for (int i = 0; i < a.n_context; i++) {
            assert_true(a.context[i] >= 0 && a.context[i] < P);
            if (i) assert_true(a.context[i] > a.context[i - 1]);
            assert_int_equal(seen[a.context[i]], 0); // C ∩ T = ∅
        }
        mask_sample(&b, &mc, grid, 3, (uint64_t)step + 1);
        differs += a.n_target != b.n_target ||
                   memcmp(a.target, b.target, sizeof(int) * (size_t)a.n_target);
    }
    assert_true(differs > 40);
    maskset_free(&a);
    maskset_free(&b);
}

static void test_negatives_independent_of_split(void **state) {
    (void)state;
    int G = 16, K = 5, whole[16 * 5], part[16 * 5];
    negatives_sample(whole, G, K, 0, G, 11, 7);
    for (int r = 0; r < 4; r++)
        negatives_sample(part + r * 4 * K, 4, K, r * 4, G, 11, 7);
    assert_memory_equal(whole, part, sizeof(whole));
    for (int j = 0; j < G; j++)
        for (int k = 0; k < K; k++) {
            assert_true(whole[j * K + k] >= 0 && whole[j * K + k] < G);
            assert_int_not_equal(whole[j * K + k], j);
        }
}

static void test_schedules(void **state) {
    (void)state;
    OptimConfig oc;
    optim_config_default(&oc);
    oc.lr = 1e-3f;
    oc.start_lr = 1e-4f;
    oc.final_lr = 1e-5f;
    oc.warmup_steps = 10;
    oc.total_steps = 110;
    assert_float_equal(schedule_lr(&oc, 0), 1e-4 + 0.1 * 9e-4, 1e-9);
    assert_float_equal(schedule_lr(&oc, 9), 1e-3, 1e-9);     // u = 10: cosine starts at lr
    assert_float_equal(schedule_lr(&oc, 59), 5.05e-4, 1e-8); // half way: mean of lr and final
    assert_float_equal(schedule_lr(&oc, 109), 1e-5, 1e-9);
    assert_float_equal(schedule_wd(&oc, 109), 0.4, 1e-6);
    assert_float_equal(schedule_ema(&oc, 0), 0.996, 1e-7);
    assert_float_equal(schedule_ema(&oc, 55), 0.998, 1e-6);
}

// Runs `steps` training steps on fixed random inputs; returns the losses.
static void run_steps(Model *m, int steps, double *losses) {
    const ModelConfig *cfg = model_config(m);
    const ModelShape *s = &cfg->shape;
    int B = cfg->local_batch, S = s->image_size, L = s->txt_len, K = cfg->negatives;
    float *img = malloc(sizeof(float) * B * 3 * S * S);
    int32_t *tok = malloc(sizeof(int32_t) * B * L);
    uint8_t *valid = malloc((size_t)B * L);
    int *neg = malloc(sizeof(int) * B * (K + 1));
    Rng r;
    rng_init(&r, 5, 0, 0, 0);
    for (int i = 0; i < B * 3 * S * S; i++)
        img[i] = rng_normal(&r);
    for (int i = 0; i < B * L; i++) {
        valid[i] = (i % L) < 3 + (i / L) % 5;
        tok[i] = valid[i] ? 5 + (int)(rng_next(&r) % 1000) : 0;
    }
    MaskSet ms;
    maskset_alloc(&ms, S / s->patch);
    MaskConfig mc;
    mask_config_default(&mc);
    OptimConfig oc;
    optim_config_default(&oc);
    oc.total_steps = steps;
    ModelBatch batch = {.n = B, .images = img, .tokens = tok, .valid = valid};
    for (int t = 0; t < steps; t++) {
        mask_sample(&ms, &mc, S / s->patch, 1, (uint64_t)t);
        const float *u = model_encode_text(m, &batch);
        NegativePool pool = {u, valid, B, 0, neg};
        negatives_sample(neg, B, K, 0, B, 1, (uint64_t)t);
        ModelLoss loss;
        model_forward_backward(m, &loss, &batch, &ms, K ? &pool : NULL, NULL, NULL);
        losses[t] = loss.loss;
        optim_step(m, &oc, t);
    }
    maskset_free(&ms);
    free(img);
    free(tok);
    free(valid);
    free(neg);
}

static void test_determinism(void **state) {
    (void)state;
    ModelMode modes[2] = {MODE_PAPER, MODE_SCRATCH};
    for (int mi = 0; mi < 2; mi++) {
        Model *a = tiny_model(modes[mi], 0.5f, 3, 4), *b = tiny_model(modes[mi], 0.5f, 3, 4);
        model_init_weights(a, 42);
        model_init_weights(b, 42);
        assert_memory_equal(model_params(a), model_params(b), model_num_params(a) * sizeof(float));
        double la[3], lb[3];
        run_steps(a, 3, la);
        run_steps(b, 3, lb);
        assert_memory_equal(la, lb, sizeof(la));
        assert_memory_equal(model_params(a), model_params(b), model_num_params(a) * sizeof(float));
        assert_memory_equal(model_ema(a), model_ema(b), model_ema_count(a) * sizeof(float));
        assert_memory_equal(model_adam_v(a), model_adam_v(b),
                            model_trainable_count(a) * sizeof(float));
        // another seed gives other weights
        model_init_weights(b, 43);
        assert_memory_not_equal(model_params(a), model_params(b), 4096);
        model_free(a);
        model_free(b);
    }
}

static void test_frozen_tensors_unchanged(void **state) {
    (void)state;
    Model *m = tiny_model(MODE_PAPER, 0.5f, 2, 2);
    model_init_weights(m, 1);
    size_t frozen = model_trainable_offset(m);
    float *before = malloc(frozen * sizeof(float));
    memcpy(before, model_params(m), frozen * sizeof(float));
    double l[2];
    run_steps(m, 2, l);
    assert_memory_equal(before, model_params(m), frozen * sizeof(float));
    free(before);
    model_free(m);
}

static void test_flops(void **state) {
    (void)state;
    Model *m = tiny_model(MODE_PAPER, 0, 0, 32);
    StepFlops f = model_step_flops(m, 32, 40, 20);
    assert_true(f.forward > 0 && f.backward > 0);
    // paper mode: the frozen encoders add forward work only, so backward < 2× forward
    assert_true(f.backward < 2 * f.forward);
    model_free(m);
    m = tiny_model(MODE_SCRATCH, 0, 0, 32);
    StepFlops g = model_step_flops(m, 32, 40, 20);
    assert_true(g.backward > f.backward && g.forward > f.forward);
    model_free(m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_presets),
        cmocka_unit_test(test_parameter_table),
        cmocka_unit_test(test_masks),
        cmocka_unit_test(test_negatives_independent_of_split),
        cmocka_unit_test(test_schedules),
        cmocka_unit_test(test_determinism),
        cmocka_unit_test(test_frozen_tensors_unchanged),
        cmocka_unit_test(test_flops),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
