/* lat_common.c — registry, shape defaults/validation and dims helpers shared
 * by the harness and the methods. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "lat_kernel.h"

const char *lat_status_name(lat_status s)
{
    switch (s) {
    case LAT_OK: return "ok";
    case LAT_UNSUPPORTED: return "unsupported";
    case LAT_EINVAL: return "invalid";
    case LAT_ENOMEM: return "nomem";
    }
    return "error";
}

lat_status lat_unsupported(char *why, size_t len, const char *fmt, ...)
{
    if (why && len) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(why, len, fmt, ap);
        va_end(ap);
    }
    return LAT_UNSUPPORTED;
}

/* ---- dims ------------------------------------------------------------------ */
#define DIMS(...)                                                  \
    do {                                                           \
        size_t d_[] = {__VA_ARGS__};                               \
        memcpy(dims, d_, sizeof d_);                               \
        return (int)(sizeof d_ / sizeof d_[0]);                    \
    } while (0)

int lat_dims_bthk(const lat_shape *s, size_t dims[8]) { DIMS((size_t)s->B, (size_t)s->T, (size_t)s->H, (size_t)s->K); }
int lat_dims_bthv(const lat_shape *s, size_t dims[8]) { DIMS((size_t)s->B, (size_t)s->T, (size_t)s->H, (size_t)s->V); }
int lat_dims_bth(const lat_shape *s, size_t dims[8]) { DIMS((size_t)s->B, (size_t)s->T, (size_t)s->H); }
int lat_dims_bhkv(const lat_shape *s, size_t dims[8]) { DIMS((size_t)s->B, (size_t)s->H, (size_t)s->K, (size_t)s->V); }

size_t lat_dims_count(lat_dims_fn f, const lat_shape *s)
{
    size_t dims[8];
    int r = f(s, dims);
    size_t n = 1;
    for (int i = 0; i < r; i++)
        n *= dims[i];
    return n;
}

/* ---- registry -------------------------------------------------------------- */
static const lat_method *const registry[] = {
#define LAT_METHOD(name) &lat_method_##name,
#include "../methods.def"
#ifdef LAT_EXTRA_METHODS
#include LAT_EXTRA_METHODS
#endif
#undef LAT_METHOD
};

int lat_method_count(void) { return (int)(sizeof registry / sizeof registry[0]); }
const lat_method *lat_method_at(int i) { return (i >= 0 && i < lat_method_count()) ? registry[i] : NULL; }

const lat_method *lat_find_method(const char *name)
{
    for (int i = 0; i < lat_method_count(); i++)
        if (strcmp(registry[i]->name, name) == 0)
            return registry[i];
    return NULL;
}

const lat_form *lat_find_form(const lat_method *m, const char *name)
{
    for (int i = 0; i < m->n_forms; i++)
        if (strcmp(m->forms[i].name, name) == 0)
            return &m->forms[i];
    return NULL;
}

/* ---- shapes ---------------------------------------------------------------- */
void lat_shape_defaults(const lat_method *m, lat_shape *s)
{
    for (int i = 0; i < m->n_knobs; i++)
        *(int *)((char *)s + m->knobs[i].offset) = m->knobs[i].def;
}

int lat_shape_ctx(const lat_shape *s) { return s->ctx > 0 ? s->ctx : s->pos + s->T; }

lat_status lat_shape_check(const lat_method *m, const lat_shape *s, char *why, size_t len)
{
    if (s->B < 1 || s->T < 1 || s->H < 1 || s->K < 1 || s->V < 1)
        return lat_unsupported(why, len, "B, T, H, K, V must be >= 1 (got B=%d T=%d H=%d K=%d V=%d)",
                               s->B, s->T, s->H, s->K, s->V);
    if (s->pos < 0 || (s->ctx > 0 && s->ctx < s->pos + s->T))
        return lat_unsupported(why, len, "KV capacity ctx=%d is below pos+T=%d", s->ctx, s->pos + s->T);
    for (int i = 0; i < m->n_knobs; i++) {
        const lat_knob *k = &m->knobs[i];
        int v = *(const int *)((const char *)s + k->offset);
        if (v < k->min || v > k->max)
            return lat_unsupported(why, len, "%s=%d outside %s's allowed range [%d, %d]", k->name, v,
                                   m->name, k->min, k->max);
    }
    if (m->validate)
        return m->validate(s, why, len);
    return LAT_OK;
}
