// Input embeddings: image patch extraction (the p×p stride-p convolution as a linear layer),
// token + learned position embedding, and the fixed 2-D sin-cos position table of I-JEPA / MAE.
// The embedding backward is a scatter-add into the tables; it is split over columns of the
// width D so that every element is summed by one thread over the tokens in a fixed order:
// no races and the same bits whatever the thread count.
#include <math.h>

#include "model.h"

#define EMBED_COLUMN_BLOCK 32
#define EMBED_PARALLEL_MIN 32768L

// img [B,C,H,W] → out [B, (H/p)·(W/p), C·p·p]; patch (r, c) values in (channel, i, j) order.
void patchify(float *out, const float *img, int B, int C, int H, int W, int p) {
    int gh = H / p, gw = W / p, patch_len = C * p * p;
    long patches = (long)B * gh * gw;
#pragma omp parallel for schedule(static) if (patches * patch_len > EMBED_PARALLEL_MIN)
    for (long t = 0; t < patches; t++) {
        int b = (int)(t / (gh * gw)), r = (int)(t % (gh * gw)) / gw, c = (int)(t % gw);
        float *dst = out + (size_t)t * patch_len;
        for (int ch = 0; ch < C; ch++)
            for (int i = 0; i < p; i++) {
                const float *src =
                    img + (((size_t)b * C + ch) * H + (size_t)r * p + i) * W + (size_t)c * p;
                for (int j = 0; j < p; j++)
                    *dst++ = src[j];
            }
    }
}

// out[B,L,D] = wte[ids[b,l]] + wpe[l] (wpe may be NULL).
void embedding_forward(float *out, const int32_t *ids, const float *wte, const float *wpe, int B,
                       int L, int D) {
    long tokens = (long)B * L;
#pragma omp parallel for schedule(static) if (tokens * D > EMBED_PARALLEL_MIN)
    for (long t = 0; t < tokens; t++) {
        const float *tok = wte + (size_t)ids[t] * D;
        const float *pos = wpe ? wpe + (size_t)(t % L) * D : NULL;
        float *dst = out + (size_t)t * D;
        for (int d = 0; d < D; d++)
            dst[d] = pos ? tok[d] + pos[d] : tok[d];
    }
}

// dwte[ids[b,l]] += dout[b,l]; dwpe[l] += dout[b,l]. Columns [d0, d0+width) only.
static void embedding_backward_columns(float *dwte, float *dwpe, const float *dout,
                                       const int32_t *ids, int B, int L, int D, int d0, int width) {
    for (int b = 0; b < B; b++)
        for (int l = 0; l < L; l++) {
            size_t t = (size_t)b * L + l;
            const float *g = dout + t * D + d0;
            if (dwte) {
                float *dst = dwte + (size_t)ids[t] * D + d0;
                for (int d = 0; d < width; d++)
                    dst[d] += g[d];
            }
            if (dwpe) {
                float *dst = dwpe + (size_t)l * D + d0;
                for (int d = 0; d < width; d++)
                    dst[d] += g[d];
            }
        }
}

// dwte [V,D], dwpe [L,D] accumulate (either may be NULL); dout [B,L,D].
void embedding_backward(float *dwte, float *dwpe, const float *dout, const int32_t *ids, int B,
                        int L, int D) {
    if (!dwte && !dwpe) return;
    int blocks = (D + EMBED_COLUMN_BLOCK - 1) / EMBED_COLUMN_BLOCK;
#pragma omp parallel for schedule(static) if ((long)B * L * D > EMBED_PARALLEL_MIN)
    for (int blk = 0; blk < blocks; blk++) {
        int d0 = blk * EMBED_COLUMN_BLOCK;
        int width = D - d0 < EMBED_COLUMN_BLOCK ? D - d0 : EMBED_COLUMN_BLOCK;
        embedding_backward_columns(dwte, dwpe, dout, ids, B, L, D, d0, width);
    }
}

// half [D/2] = [sin(pos·ω_i) for i < D/4, cos(pos·ω_i) for i < D/4], ω_i = 10000^(−i/(D/4)),
// computed in double as MAE's numpy code does.
static void sincos_1d(float *half, int pos, int D) {
    int quarter = D / 4;
    for (int i = 0; i < quarter; i++) {
        double omega = pow(10000.0, -(double)i / (double)quarter);
        half[i] = (float)sin(pos * omega);
        half[quarter + i] = (float)cos(pos * omega);
    }
}

// out [grid·grid, D]: patch (r, c) → [column code of c | row code of r].
void sincos_pos_embed_2d(float *out, int grid, int D) {
    for (int r = 0; r < grid; r++)
        for (int c = 0; c < grid; c++) {
            float *row = out + ((size_t)r * grid + c) * D;
            sincos_1d(row, c, D);
            sincos_1d(row + D / 2, r, D);
        }
}
