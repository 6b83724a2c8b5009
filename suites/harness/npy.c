/* npy.c — NumPy .npy v1.0 files (little-endian float32 / float64, C order),
 * so numpy.load and PyTorch users can check every dumped tensor. */
#include <stdlib.h>
#include <string.h>

#include "harness.h"

int lat_npy_write(const char *path, const void *data, int is_f64, const size_t *dims, int rank)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    char shape[256] = "";
    size_t count = 1;
    for (int i = 0; i < rank; i++) {
        char t[32];
        snprintf(t, sizeof t, "%zu%s", dims[i], (rank == 1 || i < rank - 1) ? ", " : "");
        strncat(shape, t, sizeof shape - strlen(shape) - 1);
        count *= dims[i];
    }
    if (rank == 1) /* "(n, )" → "(n,)" */
        shape[strlen(shape) - 1] = 0;
    char hdr[512];
    int n = snprintf(hdr, sizeof hdr, "{'descr': '<f%d', 'fortran_order': False, 'shape': (%s), }",
                     is_f64 ? 8 : 4, shape);
    int total = 10 + n + 1; /* magic(6) ver(2) len(2) + dict + '\n' */
    int pad = (64 - total % 64) % 64;
    unsigned short hl = (unsigned short)(n + pad + 1);
    int ok = fwrite("\x93NUMPY\x01\x00", 1, 8, f) == 8;
    unsigned char hlb[2] = {(unsigned char)(hl & 0xff), (unsigned char)(hl >> 8)};
    ok = ok && fwrite(hlb, 1, 2, f) == 2 && fwrite(hdr, 1, (size_t)n, f) == (size_t)n;
    for (int i = 0; i < pad && ok; i++)
        ok = fputc(' ', f) != EOF;
    ok = ok && fputc('\n', f) != EOF;
    ok = ok && fwrite(data, is_f64 ? 8 : 4, count, f) == count;
    ok = (fclose(f) == 0) && ok;
    return ok ? 0 : -1;
}

void *lat_npy_read(const char *path, int *is_f64, size_t *dims, int *rank)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    unsigned char pre[10];
    if (fread(pre, 1, 10, f) != 10 || memcmp(pre, "\x93NUMPY", 6) != 0) {
        fclose(f);
        return NULL;
    }
    size_t hl = (size_t)pre[8] | ((size_t)pre[9] << 8);
    char *hdr = calloc(1, hl + 1);
    if (fread(hdr, 1, hl, f) != hl) {
        free(hdr);
        fclose(f);
        return NULL;
    }
    *is_f64 = strstr(hdr, "'<f8'") != NULL;
    char *sp = strstr(hdr, "'shape': (");
    *rank = 0;
    size_t count = 1;
    if (sp) {
        sp += 10;
        while (*sp && *sp != ')') {
            char *end;
            unsigned long v = strtoul(sp, &end, 10);
            if (end == sp)
                break;
            dims[(*rank)++] = v;
            count *= v;
            sp = end;
            while (*sp == ',' || *sp == ' ')
                sp++;
        }
    }
    free(hdr);
    size_t es = *is_f64 ? 8 : 4;
    void *data = malloc(count * es + 1);
    if (fread(data, es, count, f) != count) {
        free(data);
        data = NULL;
    }
    fclose(f);
    return data;
}
