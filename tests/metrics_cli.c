// metrics_cli: the evaluation metrics of model.h section 8 on inputs from a text file, for the
// comparison with the Python reference (tests/check_metrics.py).
//   metrics_cli retrieval FILE   FILE: N, then N·N energies (row i = image i); prints the ranks
//                                and "t2i r1 r5 r10 median mean" / "i2t ..." lines
//   metrics_cli classify FILE    FILE: n classes, then n truth labels, then n predictions;
//                                prints "accuracy A", "weighted_f1 W", "macro_f1 M", "f1 ..."
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model.h"

static void print_scores(const char *name, const RetrievalScores *s) {
    printf("%s %.17g %.17g %.17g %.17g %.17g\n", name, s->r1, s->r5, s->r10, s->median_rank,
           s->mean_rank);
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: metrics_cli retrieval|classify FILE\n");
        return 2;
    }
    FILE *f = fopen(argv[2], "r");
    if (!f) {
        perror(argv[2]);
        return 1;
    }
    int rc = 1;
    if (!strcmp(argv[1], "retrieval")) {
        int n;
        if (fscanf(f, "%d", &n) != 1 || n < 1) goto bad;
        float *e = malloc(sizeof(float) * (size_t)n * n);
        int *rt = malloc(sizeof(int) * n), *ri = malloc(sizeof(int) * n);
        for (long i = 0; i < (long)n * n; i++)
            if (fscanf(f, "%f", &e[i]) != 1) goto bad;
        retrieval_ranks(rt, ri, e, n);
        printf("t2i_ranks");
        for (int i = 0; i < n; i++)
            printf(" %d", rt[i]);
        printf("\ni2t_ranks");
        for (int i = 0; i < n; i++)
            printf(" %d", ri[i]);
        printf("\n");
        RetrievalScores a, b;
        retrieval_scores(&a, &b, e, n);
        print_scores("t2i", &a);
        print_scores("i2t", &b);
        free(e);
        free(rt);
        free(ri);
        rc = 0;
    } else if (!strcmp(argv[1], "classify")) {
        int n, classes;
        if (fscanf(f, "%d %d", &n, &classes) != 2 || n < 1 || classes < 1) goto bad;
        int *t = malloc(sizeof(int) * n), *p = malloc(sizeof(int) * n);
        for (int i = 0; i < n; i++)
            if (fscanf(f, "%d", &t[i]) != 1) goto bad;
        for (int i = 0; i < n; i++)
            if (fscanf(f, "%d", &p[i]) != 1) goto bad;
        double *f1 = malloc(sizeof(double) * classes), macro;
        double w = metric_f1(f1, NULL, &macro, t, p, n, classes);
        printf("accuracy %.17g\nweighted_f1 %.17g\nmacro_f1 %.17g\nf1", metric_accuracy(t, p, n), w,
               macro);
        for (int c = 0; c < classes; c++)
            printf(" %.17g", f1[c]);
        printf("\n");
        free(t);
        free(p);
        free(f1);
        rc = 0;
    } else {
        fprintf(stderr, "metrics_cli: unknown mode %s\n", argv[1]);
        rc = 2;
    }
    fclose(f);
    return rc;
bad:
    fprintf(stderr, "metrics_cli: %s: malformed input\n", argv[2]);
    fclose(f);
    return 1;
}
