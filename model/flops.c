// Analytic FLOPs of one training step (2·M·N·K per GEMM; attention's two GEMMs included;
// element-wise work ignored). Backward: 2× forward for layers whose weights and inputs both
// need gradients, 1× when only one of them does, nothing for frozen encoders.
#include "network.h"

#include <cblas.h>
#include <omp.h>

// Per token: linear layers of a self-attention block of width D (qkv, proj, fc1, fc2).
static double self_block_linear(double D) {
    return 2.0 * D * (3 * D + D + 4 * D + 4 * D);
}

StepFlops model_step_flops(const Model *m, int n, int nC, int nT) {
    const ModelShape *s = &m->cfg.shape;
    double B = n, K1 = m->K1, Bv = B * K1, P = m->P, L = s->txt_len;
    double De = s->img_dim, Dt = s->txt_dim, H = s->cross_dim, Dp = s->pred_dim;
    double pp3 = 3.0 * s->patch * s->patch, np = nC + nT;
    StepFlops f = {0, 0};
    int train_enc = trains_encoders(m);
    if (is_ijepa(m)) { // online encoder on C (forward + backward), EMA encoder on the image,
                       // predictor from and to De
        double ctx =
            B * nC * (2 * pp3 * De + s->img_depth * (self_block_linear(De) + 4.0 * nC * De));
        double full =
            B * P * (2 * pp3 * De + s->img_depth * (self_block_linear(De) + 4.0 * P * De));
        double pred = B * nC * 2 * De * Dp +
                      B * np * s->pred_depth * (self_block_linear(Dp) + 4.0 * np * Dp) +
                      B * nT * 2 * Dp * De;
        f.forward = ctx + full + pred;
        f.backward = 2 * ctx + 2 * pred;
        return f;
    }

    // text encoder (once per sample)
    double txt = B * L * s->txt_depth * (self_block_linear(Dt) + 4.0 * L * Dt);
    f.forward += txt;
    if (train_enc) f.backward += 2 * txt;

    // image encoder: full image (frozen or EMA), plus the online context pass in scratch mode
    double img_full =
        B * P * (2 * pp3 * De + s->img_depth * (self_block_linear(De) + 4.0 * P * De));
    f.forward += img_full;
    if (train_enc) {
        double img_ctx =
            B * nC * (2 * pp3 * De + s->img_depth * (self_block_linear(De) + 4.0 * nC * De));
        f.forward += img_ctx;
        f.backward += 2 * img_ctx;
    }

    // crosser per query token and per text token, for context (Bv samples) and target (B)
    double cross_q = 2 * H * (H + H + 8 * H) + 4.0 * L * H; // q, proj, mlp, attention
    double cross_t = 2 * H * 2 * H;                         // kv
    double proj_in = 2 * De * H, proj_txt = (Dt != H) ? 2 * Dt * H : 0;
    double ctx = B * nC * proj_in + Bv * L * proj_txt +
                 s->cross_depth * (Bv * nC * cross_q + Bv * L * cross_t);
    double tgt =
        B * P * proj_in + B * L * proj_txt + s->cross_depth * (B * P * cross_q + B * L * cross_t);
    // with negatives that see their own caption, the target crosser runs once per caption slot
    f.forward += ctx + tgt * (negatives_own_target(m) ? K1 : 1);
    f.backward += 2 * ctx;

    // predictor
    double pred = Bv * nC * 2 * H * Dp +
                  Bv * np * s->pred_depth * (self_block_linear(Dp) + 4.0 * np * Dp) +
                  Bv * nT * 2 * Dp * H;
    f.forward += pred;
    f.backward += 2 * pred;
    return f;
}

void model_set_threads(int threads) {
    if (threads <= 0) return;
    // The kernels split GEMMs over OpenMP themselves (one thread pool: OpenBLAS's own threads
    // would spin against OpenMP's), so OpenBLAS runs single-threaded.
    openblas_set_num_threads(1);
    omp_set_num_threads(threads);
}
