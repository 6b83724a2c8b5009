/* mq_grad.c — every trainable mixer's hand-written backward pass against
 * central finite differences in fp64 (issue 7: relative error ≤ 1e-6), at
 * small awkward shapes: L ∈ {1, 7, 19} (19 spans several of the scans'
 * checkpoint chunks, e.g. mamba's 8 tokens), D = 8, state knob at two values, H = 1
 * and 2 (where the mixer allows). Usage: mq_grad [mixer ...]. Prints one line
 * per case and "N passed, N failed"; exits 1 on any failure. */
#include "../suites/tasks/mq.h"
#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
    int pass = 0, fail = 0;
    for (int i = 0; i < mq_n_mixers; i++) {
        const mq_mixer *m = mq_mixers[i];
        if (argc > 1) {
            int want = 0;
            for (int a = 1; a < argc; a++) want |= !strcmp(argv[a], m->name);
            if (!want) continue;
        }
        static const int Ls[] = { 1, 7, 19 };
        for (int li = 0; li < 3; li++)
            for (int si = 0; si < 2; si++) {
                mq_cfg c = mq_cfg_default();
                c.D = 8; c.dk = 4; c.feat = 4; c.window = 3; c.n_state = 3; c.expand = 2;
                if (si == 1) { /* K != V, two heads where meaningful */
                    c.dk = 6; c.feat = 3; c.window = 5; c.n_state = 2; c.H = 2;
                }
                char why[256];
                double e = mq_gradcheck_mixer(m, &c, Ls[li], 1234 + 17 * li + si, 400, why, sizeof why);
                int ok = e <= 1e-6;
                printf("%s %-16s L=%d case %d: %s\n", ok ? "PASS" : "FAIL", m->name, Ls[li], si, why);
                ok ? pass++ : fail++;
            }
    }
    printf("%d passed, %d failed\n", pass, fail);
    return fail ? 1 : 0;
}
