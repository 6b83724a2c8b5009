/* replay.c — runs fuzz inputs through a harness's LLVMFuzzerTestOneInput
 * without libFuzzer, so the committed corpora (tests/fuzz/corpus_*: seeds and
 * every input that once crashed) are a regression test in `make test` with
 * gcc, and under AddressSanitizer in `make sanitize`.
 * Usage: fuzz_replay_<harness> FILE_OR_DIR...  A crash is the failure. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int replay_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "replay: cannot read %s\n", path);
        return -1;
    }
    size_t cap = 4096, len = 0;
    uint8_t *buf = malloc(cap);
    for (size_t got; buf && (got = fread(buf + len, 1, cap - len, f)) > 0;) {
        len += got;
        if (len == cap) {
            uint8_t *nb = realloc(buf, cap *= 2);
            if (!nb)
                free(buf);
            buf = nb;
        }
    }
    fclose(f);
    if (!buf)
        return -1;
    /* libFuzzer hands the target exactly `len` bytes: copy into a tight buffer */
    uint8_t *exact = malloc(len ? len : 1);
    memcpy(exact, buf, len);
    free(buf);
    LLVMFuzzerTestOneInput(exact, len);
    free(exact);
    return 0;
}

int main(int argc, char **argv)
{
    int n = 0, bad = 0;
    for (int i = 1; i < argc; i++) {
        struct stat sb;
        if (stat(argv[i], &sb) == 0 && S_ISDIR(sb.st_mode)) {
            DIR *d = opendir(argv[i]);
            for (struct dirent *e; d && (e = readdir(d));) {
                if (e->d_name[0] == '.')
                    continue;
                char p[4096];
                snprintf(p, sizeof p, "%s/%s", argv[i], e->d_name);
                bad += replay_file(p) != 0;
                n++;
            }
            if (d)
                closedir(d);
        } else {
            bad += replay_file(argv[i]) != 0;
            n++;
        }
    }
    printf("%s: %d inputs replayed without a crash\n", argv[0], n - bad);
    printf("%d passed, %d failed\n", n - bad, bad);
    return bad ? 1 : 0;
}
