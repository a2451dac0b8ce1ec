// Kernel tests, attention: forward (outputs and probabilities) against a naive double-precision
// loop, and the q/k/v gradients against finite differences, for fused self-attention (q, k, v
// interleaved in one [.., 3D] buffer, gradients into one fused dqkv), cross-attention with
// Nq ≠ Nk, a padded q row stride and a fused [.., 2D] kv buffer, key-padding masks (some keys
// padded; one sample with all keys but one padded; one with every key padded), several heads,
// and one odd-width single head. Also: NULL gradients are skipped, and the backward that
// recomputes the probabilities (attention_backward_recompute) gives the same bits.
#include "blocks.h"
#include "kernel_test_util.h"
#include "model.h"

enum layout { SELF_FUSED, CROSS_KV_FUSED, SEPARATE };

typedef struct {
    const char *name;
    int B, Nq, Nk, D, heads;
    enum layout layout;
    int q_pad;        // unused floats at the end of each q row (CROSS_KV_FUSED)
    const char *mask; // B·Nk characters '1' attend / '0' padded, or NULL
} attention_spec;

typedef struct {
    attention_spec spec;
    int q_stride, kv_stride, nbuf;
    float *buf[3];    // the input buffers q, k, v live in
    size_t len[3];    // floats per buffer
    int which[3];     // buffer of q, k, v
    size_t offset[3]; // offset of q, k, v in their buffer
    uint8_t *valid;
    float *out, *probs, *w;
} attention_case;

static const float *tensor(const attention_case *c, float *const *bufs, int t) {
    return bufs[c->which[t]] + c->offset[t];
}

static double attention_loss(void *ctx) {
    attention_case *c = ctx;
    const attention_spec *s = &c->spec;
    attention_forward(c->out, c->probs, tensor(c, c->buf, 0), tensor(c, c->buf, 1),
                      tensor(c, c->buf, 2), c->valid, s->B, s->Nq, s->Nk, s->D, s->heads,
                      c->q_stride, c->kv_stride);
    return gradcheck_dot(c->w, c->out, (size_t)s->B * s->Nq * s->D);
}

// Buffers and strides of each layout.
static void attention_layout(attention_case *c) {
    const attention_spec *s = &c->spec;
    size_t q_rows = (size_t)s->B * s->Nq, kv_rows = (size_t)s->B * s->Nk;
    if (s->layout == SELF_FUSED) { // qkv [B,N,3D]
        c->q_stride = c->kv_stride = 3 * s->D;
        c->nbuf = 1;
        c->len[0] = q_rows * 3 * s->D;
        for (int t = 0; t < 3; t++)
            c->which[t] = 0, c->offset[t] = (size_t)t * s->D;
    } else if (s->layout == CROSS_KV_FUSED) { // q [B,Nq,D+pad], kv [B,Nk,2D]
        c->q_stride = s->D + s->q_pad;
        c->kv_stride = 2 * s->D;
        c->nbuf = 2;
        c->len[0] = q_rows * c->q_stride;
        c->len[1] = kv_rows * 2 * s->D;
        c->which[0] = 0, c->which[1] = c->which[2] = 1;
        c->offset[0] = c->offset[1] = 0, c->offset[2] = s->D;
    } else { // separate contiguous q, k, v
        c->q_stride = c->kv_stride = s->D;
        c->nbuf = 3;
        c->len[0] = q_rows * s->D;
        c->len[1] = c->len[2] = kv_rows * s->D;
        for (int t = 0; t < 3; t++)
            c->which[t] = t, c->offset[t] = 0;
    }
}

// Fills q and k with values of magnitude up to `range` (v and row padding keep [-1, 1]): larger
// logits make the softmax gradients larger relative to the float32 rounding noise of FD.
static void fill_qk(attention_case *c, gradcheck_rng *rng, float range) {
    const attention_spec *s = &c->spec;
    for (int t = 0; t < 2; t++) {
        int rows = s->B * (t == 0 ? s->Nq : s->Nk), stride = t == 0 ? c->q_stride : c->kv_stride;
        for (int r = 0; r < rows; r++)
            gradcheck_fill(rng, c->buf[c->which[t]] + c->offset[t] + (size_t)r * stride, s->D,
                           -range, range);
    }
}

static attention_case attention_setup(attention_spec spec, uint64_t seed) {
    attention_case c = {.spec = spec};
    attention_layout(&c);
    gradcheck_rng rng = test_rng(seed);
    for (int i = 0; i < c.nbuf; i++) {
        c.buf[i] = test_floats(c.len[i]);
        gradcheck_fill(&rng, c.buf[i], c.len[i], -1.0f, 1.0f);
    }
    fill_qk(&c, &rng, 2.5f);
    size_t out_len = (size_t)spec.B * spec.Nq * spec.D;
    c.out = test_floats(out_len);
    c.w = test_floats(out_len);
    gradcheck_fill(&rng, c.w, out_len, -1.0f, 1.0f);
    c.probs = test_floats((size_t)spec.B * spec.heads * spec.Nq * spec.Nk);
    if (spec.mask) {
        c.valid = test_alloc((size_t)spec.B * spec.Nk);
        for (int i = 0; i < spec.B * spec.Nk; i++)
            c.valid[i] = spec.mask[i] == '1';
    }
    return c;
}

static void attention_free(attention_case *c) {
    for (int i = 0; i < c->nbuf; i++)
        free(c->buf[i]);
    free(c->valid), free(c->out), free(c->probs), free(c->w);
}

// Naive double-precision attention: out [B,Nq,D], probs [B,heads,Nq,Nk].
static void attention_reference(double *out, double *probs, const attention_case *c) {
    const attention_spec *s = &c->spec;
    const float *q = tensor(c, c->buf, 0), *k = tensor(c, c->buf, 1), *v = tensor(c, c->buf, 2);
    int hd = s->D / s->heads;
    double *logit = test_doubles(s->Nk);
    for (int b = 0; b < s->B; b++)
        for (int h = 0; h < s->heads; h++)
            for (int i = 0; i < s->Nq; i++) {
                const float *qi = q + ((size_t)b * s->Nq + i) * c->q_stride + h * hd;
                double *p = probs + (((size_t)b * s->heads + h) * s->Nq + i) * s->Nk;
                double max = -INFINITY, sum = 0.0;
                for (int j = 0; j < s->Nk; j++) {
                    const float *kj = k + ((size_t)b * s->Nk + j) * c->kv_stride + h * hd;
                    double dot = 0.0;
                    for (int d = 0; d < hd; d++)
                        dot += (double)qi[d] * kj[d];
                    logit[j] = dot / sqrt((double)hd);
                    int ok = !c->valid || c->valid[b * s->Nk + j];
                    if (ok && logit[j] > max) max = logit[j];
                }
                for (int j = 0; j < s->Nk; j++) {
                    int ok = !c->valid || c->valid[b * s->Nk + j];
                    p[j] = ok ? exp(logit[j] - max) : 0.0;
                    sum += p[j];
                }
                for (int j = 0; j < s->Nk; j++)
                    p[j] = sum > 0.0 ? p[j] / sum : 0.0;
                double *o = out + ((size_t)b * s->Nq + i) * s->D + h * hd;
                for (int d = 0; d < hd; d++) {
                    o[d] = 0.0;
                    for (int j = 0; j < s->Nk; j++)
                        o[d] += p[j] * v[((size_t)b * s->Nk + j) * c->kv_stride + h * hd + d];
                }
            }
    free(logit);
}

// Runs the backward with dout = w into gradient buffers shaped like the input buffers.
static void attention_grads(attention_case *c, float **grad, int want_q, int want_k, int want_v) {
    const attention_spec *s = &c->spec;
    float *scratch = test_floats((size_t)s->B * s->heads * s->Nq * s->Nk);
    attention_loss(c);
    attention_backward(want_q ? (float *)tensor(c, grad, 0) : NULL,
                       want_k ? (float *)tensor(c, grad, 1) : NULL,
                       want_v ? (float *)tensor(c, grad, 2) : NULL, scratch, c->w,
                       tensor(c, c->buf, 0), tensor(c, c->buf, 1), tensor(c, c->buf, 2), c->probs,
                       s->B, s->Nq, s->Nk, s->D, s->heads, c->q_stride, c->kv_stride);
    free(scratch);
}

static void check_attention(attention_spec spec, uint64_t seed) {
    printf("attention %s: B=%d Nq=%d Nk=%d D=%d heads=%d\n", spec.name, spec.B, spec.Nq, spec.Nk,
           spec.D, spec.heads);
    attention_case c = attention_setup(spec, seed);
    size_t out_len = (size_t)spec.B * spec.Nq * spec.D;
    size_t probs_len = (size_t)spec.B * spec.heads * spec.Nq * spec.Nk;
    double *ref_out = test_doubles(out_len), *ref_probs = test_doubles(probs_len);
    attention_loss(&c);
    attention_reference(ref_out, ref_probs, &c);
    expect_forward("out", c.out, ref_out, out_len);
    expect_forward("probs", c.probs, ref_probs, probs_len);

    float *grad[3] = {0};
    for (int i = 0; i < c.nbuf; i++)
        grad[i] = test_prefilled(c.len[i]);
    attention_grads(&c, grad, 1, 1, 1);
    static const char *names[3][3] = {{"dqkv"}, {"dq", "dkv"}, {"dq", "dk", "dv"}};
    for (int i = 0; i < c.nbuf; i++) {
        expect_all_finite(grad[i], c.len[i]);
        expect_gradient(names[spec.layout][i], attention_loss, &c, c.buf[i], c.len[i], grad[i],
                        FD_STEP_ATTENTION);
    }
    for (int i = 0; i < c.nbuf; i++)
        free(grad[i]);
    free(ref_out), free(ref_probs);
    attention_free(&c);
}

static void test_attention_self_fused(void **state) {
    (void)state;
    check_attention((attention_spec){"self fused qkv", 2, 7, 7, 12, 3, SELF_FUSED, 0, NULL}, 61);
    check_attention((attention_spec){"self fused masked", 2, 5, 5, 8, 2, SELF_FUSED, 0,
                                     "11101"
                                     "11000"},
                    62);
}

static void test_attention_cross_masked(void **state) {
    (void)state;
    check_attention((attention_spec){"cross kv fused", 3, 5, 9, 8, 2, CROSS_KV_FUSED, 3,
                                     "111111111"
                                     "111111000"
                                     "000010000"},
                    63);
    check_attention((attention_spec){"single odd head", 1, 7, 13, 13, 1, SEPARATE, 0, NULL}, 64);
}

// A sample whose keys are all padded: its outputs and probabilities are exactly 0, and the
// gradients stay finite (and still match finite differences, which are 0 for its queries).
static void test_attention_fully_masked(void **state) {
    (void)state;
    attention_spec spec = {"fully masked",
                           2,
                           4,
                           6,
                           6,
                           2,
                           CROSS_KV_FUSED,
                           0,
                           "101101"
                           "000000"};
    check_attention(spec, 65);
    attention_case c = attention_setup(spec, 66);
    attention_loss(&c);
    for (int i = 0; i < spec.Nq * spec.D; i++)
        assert_true(c.out[spec.Nq * spec.D + i] == 0.0f);
    size_t per_b = (size_t)spec.heads * spec.Nq * spec.Nk;
    for (size_t i = 0; i < per_b; i++)
        assert_true(c.probs[per_b + i] == 0.0f);
    float *grad[2] = {test_prefilled(c.len[0]), test_prefilled(c.len[1])};
    attention_grads(&c, grad, 1, 1, 1);
    size_t q_per_b = c.len[0] / spec.B, kv_per_b = c.len[1] / spec.B;
    for (size_t i = 0; i < q_per_b; i++)
        assert_true(grad[0][q_per_b + i] == GRAD_PREFILL);
    for (size_t i = 0; i < kv_per_b; i++)
        assert_true(grad[1][kv_per_b + i] == GRAD_PREFILL);
    free(grad[0]), free(grad[1]);
    attention_free(&c);
}

// Each of dq, dk, dv computed alone equals its value from the call computing all three.
static void test_attention_null_grads(void **state) {
    (void)state;
    attention_spec spec = {"separate",
                           2,
                           5,
                           6,
                           8,
                           2,
                           SEPARATE,
                           0,
                           "111110"
                           "011111"};
    attention_case c = attention_setup(spec, 67);
    float *all[3], *one[3];
    for (int i = 0; i < 3; i++)
        all[i] = test_prefilled(c.len[i]);
    attention_grads(&c, all, 1, 1, 1);
    for (int t = 0; t < 3; t++) {
        for (int i = 0; i < 3; i++)
            one[i] = test_prefilled(c.len[i]);
        attention_grads(&c, one, t == 0, t == 1, t == 2);
        for (int i = 0; i < 3; i++) {
            if (i == t)
                assert_memory_equal(one[i], all[i], c.len[i] * sizeof(float));
            else
                for (size_t j = 0; j < c.len[i]; j++)
                    assert_true(one[i][j] == GRAD_PREFILL);
            free(one[i]);
        }
    }
    for (int i = 0; i < 3; i++)
        free(all[i]);
    attention_free(&c);
}

// attention_backward_recompute keeps nothing from the forward: its rewritten output is bit for
// bit attention_forward's, its gradients (written, not accumulated) equal attention_backward's
// from the saved probabilities into zeroed buffers, with one and with several workspace slots
// (the second call writes over the first's result: accumulating would double it).
static void check_recompute_bits(attention_spec spec, uint64_t seed) {
    attention_case c = attention_setup(spec, seed);
    const attention_spec *s = &c.spec;
    size_t out_len = (size_t)s->B * s->Nq * s->D, nn = (size_t)s->Nq * s->Nk;
    float *scratch = test_floats((size_t)s->B * s->heads * nn);
    float *want[3], *got[3];
    for (int i = 0; i < c.nbuf; i++)
        want[i] = test_floats(c.len[i]), got[i] = test_floats(c.len[i]);
    attention_loss(&c); // c.out, c.probs
    attention_backward((float *)tensor(&c, want, 0), (float *)tensor(&c, want, 1),
                       (float *)tensor(&c, want, 2), scratch, c.w, tensor(&c, c.buf, 0),
                       tensor(&c, c.buf, 1), tensor(&c, c.buf, 2), c.probs, s->B, s->Nq, s->Nk,
                       s->D, s->heads, c.q_stride, c.kv_stride);
    for (int slots = 1; slots <= 3; slots += 2) {
        float *ws = test_floats((size_t)slots * 2 * nn), *out = test_prefilled(out_len);
        attention_backward_recompute(
            (float *)tensor(&c, got, 0), (float *)tensor(&c, got, 1), (float *)tensor(&c, got, 2),
            out, ws, slots, c.w, tensor(&c, c.buf, 0), tensor(&c, c.buf, 1), tensor(&c, c.buf, 2),
            c.valid, s->B, s->Nq, s->Nk, s->D, s->heads, c.q_stride, c.kv_stride);
        assert_memory_equal(out, c.out, out_len * sizeof(float));
        for (int i = 0; i < c.nbuf; i++)
            for (size_t j = 0; j < c.len[i]; j++) // 0 + x is x (up to the sign of a zero)
                assert_true(got[i][j] == want[i][j]);
        free(ws), free(out);
    }
    for (int i = 0; i < c.nbuf; i++)
        free(want[i]), free(got[i]);
    free(scratch);
    attention_free(&c);
}

static void test_attention_recompute_bits(void **state) {
    (void)state;
    check_recompute_bits((attention_spec){"self fused qkv", 2, 7, 7, 12, 3, SELF_FUSED, 0, NULL},
                         71);
    check_recompute_bits((attention_spec){"cross kv fused", 3, 5, 9, 8, 2, CROSS_KV_FUSED, 3,
                                          "111111111"
                                          "111111000"
                                          "000000000"},
                         72);
    check_recompute_bits((attention_spec){"single odd head", 1, 7, 13, 13, 1, SEPARATE, 0, NULL},
                         73);
    // enough (batch, head) pairs and work for the threaded path
    check_recompute_bits((attention_spec){"many heads", 8, 40, 40, 64, 4, SELF_FUSED, 0, NULL}, 74);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_attention_self_fused),
        cmocka_unit_test(test_attention_cross_masked),
        cmocka_unit_test(test_attention_fully_masked),
        cmocka_unit_test(test_attention_null_grads),
        cmocka_unit_test(test_attention_recompute_bits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
