/* claims_fuzz.c — fuzz target for the claims TSV parser and evaluator.
 *
 *   libFuzzer:  clang -DLAT_LIBFUZZER -fsanitize=fuzzer,address … tests/claims_fuzz.c <latbench objects>
 *               (LAT_FUZZ_RUN=DIR also evaluates every parsed claim against DIR)
 *   standalone: claims_fuzz FILE [RUN_DIR]            parse FILE (and evaluate against RUN_DIR)
 *               claims_fuzz --mutate N SEED FILE [RUN_DIR]
 *                   N random byte mutations of FILE, each parsed (and evaluated)
 *
 * Nothing is written: evaluation uses lat_claims_eval, not the report. The
 * exit status is 0 unless a file cannot be read; a crash or a sanitizer
 * report is the failure this target looks for. Build it with sanitizers,
 * e.g. (gcc) the latbench objects compiled with -fsanitize=address,undefined. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../suites/harness/claims.h"

static const char *run_dir;

static void one(const char *data, size_t size)
{
    lat_claims *c;
    if (lat_claims_parse(data, size, "fuzz", &c, NULL) != 0)
        return;
    if (run_dir) {
        lat_claim_result r;
        for (int i = 0; i < lat_claims_count(c); i++)
            lat_claims_eval(c, i, run_dir, &r);
    }
    lat_claims_free(c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!run_dir)
        run_dir = getenv("LAT_FUZZ_RUN");
    one((const char *)data, size);
    return 0;
}

#ifndef LAT_LIBFUZZER
static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 1 << 16;
    char *buf = malloc(cap);
    *len = 0;
    for (size_t got; buf && (got = fread(buf + *len, 1, cap - *len, f)) > 0;) {
        *len += got;
        if (*len == cap) {
            char *nb = realloc(buf, cap *= 2);
            if (!nb)
                free(buf);
            buf = nb;
        }
    }
    fclose(f);
    return buf;
}

static uint64_t rng(uint64_t *s) /* splitmix64 */
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Overwrites, inserts or deletes a few bytes, favouring the grammar's characters. */
static size_t mutate(const char *src, size_t len, char *dst, uint64_t *s)
{
    static const char alphabet[] = "(){}[],;|=<>*\"\t\n#:.-+/^0123456789eaxTmin_ ";
    memcpy(dst, src, len);
    int edits = 1 + (int)(rng(s) % 8);
    for (int e = 0; e < edits && len; e++) {
        size_t pos = rng(s) % len;
        char c = (rng(s) % 4) ? alphabet[rng(s) % (sizeof alphabet - 1)] : (char)(rng(s) & 0xff);
        switch (rng(s) % 3) {
        case 0: dst[pos] = c; break;
        case 1: memmove(dst + pos + 1, dst + pos, len - pos); dst[pos] = c; len++; break;
        default: memmove(dst + pos, dst + pos + 1, len - pos - 1); len--; break;
        }
    }
    return len;
}

int main(int argc, char **argv)
{
    if (argc >= 5 && !strcmp(argv[1], "--mutate")) {
        long n = atol(argv[2]);
        uint64_t seed = strtoull(argv[3], NULL, 10);
        size_t len;
        char *src = slurp(argv[4], &len);
        if (!src) {
            fprintf(stderr, "claims_fuzz: cannot read %s\n", argv[4]);
            return 2;
        }
        run_dir = argc > 5 ? argv[5] : NULL;
        char *buf = malloc(len + 64);
        for (long i = 0; i < n && buf; i++) {
            size_t m = mutate(src, len, buf, &seed);
            one(buf, m);
        }
        printf("%ld mutations of %s: no crash\n", n, argv[4]);
        free(buf);
        free(src);
        return 0;
    }
    if (argc < 2) {
        fprintf(stderr, "usage: claims_fuzz FILE [RUN_DIR] | claims_fuzz --mutate N SEED FILE [RUN_DIR]\n");
        return 2;
    }
    size_t len;
    char *buf = slurp(argv[1], &len);
    if (!buf) {
        fprintf(stderr, "claims_fuzz: cannot read %s\n", argv[1]);
        return 2;
    }
    run_dir = argc > 2 ? argv[2] : NULL;
    one(buf, len);
    free(buf);
    return 0;
}
#endif
