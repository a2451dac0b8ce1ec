// The model's buffers as checkpoint content: /params (every tensor), /ema (the EMA copies),
// /optim/m and /optim/v (the trainable tensors), by the names of the parameter table.
#include <stdio.h>
#include <string.h>

#include "checkpoint.h"
#include "launch.h"

static int add_group(CkptContent *c, const char *group, Model *m, float *buf, size_t lo,
                     size_t count, char *err, size_t errlen) {
    int n;
    const TensorInfo *t = model_tensors(m, &n);
    for (int i = 0; i < n; i++) {
        if (t[i].offset < lo || t[i].offset + t[i].numel > lo + count) continue;
        int64_t shape[4];
        for (int d = 0; d < t[i].ndim; d++)
            shape[d] = t[i].shape[d];
        if (ckpt_add_tensor(c, group, t[i].name, t[i].ndim, shape, buf + (t[i].offset - lo), err,
                            errlen))
            return -1;
    }
    return 0;
}

int model_ckpt_content(CkptContent *c, Model *m, int with_optim, char *err, size_t errlen) {
    if (add_group(c, "params", m, model_params(m), 0, model_num_params(m), err, errlen) ||
        add_group(c, "ema", m, model_ema(m), model_ema_offset(m), model_ema_count(m), err, errlen))
        return -1;
    if (!with_optim) return 0;
    size_t lo = model_trainable_offset(m), n = model_trainable_count(m);
    if (add_group(c, "optim/m", m, model_adam_m(m), lo, n, err, errlen) ||
        add_group(c, "optim/v", m, model_adam_v(m), lo, n, err, errlen))
        return -1;
    return 0;
}
