/* lat.h — the one interface every latbench method implements.
 *
 * A method is a `const lat_method` descriptor (impls/<method>.c) listed once in
 * impls/methods.def. The harness (suites/) only ever sees this header: it reads
 * the descriptor to generate valid inputs from a seed, size every buffer, run
 * each form, compare it with the fp64 reference and report FLOPs and bytes.
 *
 * Dimension legend (used in every file):
 *   B batch, T tokens in this call, H heads, K query/key head dim,
 *   V value head dim, C chunk length.
 * Layout (time-major, same as fla and ggml):
 *   q, k and per-key gates  [B][T][H][K]
 *   v, o                    [B][T][H][V]
 *   per-head scalars        [B][T][H]
 *   state                   [B][H][K][V]  unless the method documents another
 *                           layout in its header comment (e.g. a KV cache).
 * A method whose tensors are not (K, V) shaped (Mamba's channels, a vision grid)
 * says so in its descriptor through the `dims` functions of its inputs/outputs.
 *
 * Statuses: LAT_OK; LAT_UNSUPPORTED when the shape is outside what the method or
 * form allows (the harness records it with the reason and goes on); an error
 * status otherwise.
 */
#ifndef LAT_H
#define LAT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    LAT_OK = 0,
    LAT_UNSUPPORTED = 1, /* shape/knobs outside the method's constraints */
    LAT_EINVAL = 2,      /* inconsistent arguments (a harness bug)       */
    LAT_ENOMEM = 3,      /* workspace too small                          */
} lat_status;

const char *lat_status_name(lat_status s);

/* ------------------------------------------------------------------------- */
/* Shapes and knobs                                                          */
/* ------------------------------------------------------------------------- */

/* Everything a form needs to know about the problem size. The knob fields
 * below are shared by all methods; each method declares (lat_knob) which ones
 * it reads, with the paper's defaults, and ignores the rest. A new knob is a
 * new field here plus its lat_knob line in the method: the harness parses any
 * declared knob by name (`--chunk 32`, suite `knobs chunk=32`). */
typedef struct lat_shape {
    int B, T, H, K, V;
    /* position of the first token of this call = tokens already held in the
     * initial state (0 for a fresh sequence). KV-cache methods use it to find
     * their prefix; recurrent methods ignore it unless positions matter. */
    int pos;
    /* KV-cache capacity in tokens (softmax/sparse state); 0 means pos + T. */
    int ctx;
    /* ---- per-method knobs (0 = not used by this method) ---- */
    int causal;   /* 1 causal, 0 non-causal (methods offering both)          */
    int chunk;    /* chunk length C of chunkwise forms                       */
    int subchunk; /* secondary chunk c (GLA / RWKV-6)                        */
    int tile_q;   /* query tile rows (tiled softmax)                         */
    int tile_k;   /* key tile columns (tiled softmax)                        */
    int window;   /* sliding-window size w (keys including self)             */
    int stride;   /* sparse stride                                            */
    int n_state;  /* SSM state size N                                         */
    int features; /* random / Taylor feature count                           */
    int agents;   /* agent tokens                                             */
    int expand;   /* expansion ratio                                          */
    int groups;   /* B/C groups (Mamba-2) or KV groups                        */
    int variant;  /* method-specific variant selector (documented per method)*/
} lat_shape;

/* A knob a method reads: its name on the command line and in suite files,
 * where it lives in lat_shape, the paper default and the allowed range. */
typedef struct lat_knob {
    const char *name;
    size_t offset; /* offsetof(lat_shape, field) */
    int def, min, max;
    const char *doc;
} lat_knob;

#define LAT_KNOB(field, def, min, max, doc) \
    { #field, offsetof(lat_shape, field), (def), (min), (max), (doc) }

/* Tensor dimensions: fills dims[] (outermost first), returns the rank. */
typedef int (*lat_dims_fn)(const lat_shape *s, size_t dims[8]);

/* Common dims functions (impls/common/lat_dims.c). */
int lat_dims_bthk(const lat_shape *s, size_t dims[8]); /* [B][T][H][K] */
int lat_dims_bthv(const lat_shape *s, size_t dims[8]); /* [B][T][H][V] */
int lat_dims_bth(const lat_shape *s, size_t dims[8]);  /* [B][T][H]    */
int lat_dims_bhkv(const lat_shape *s, size_t dims[8]); /* [B][H][K][V] */
size_t lat_dims_count(lat_dims_fn f, const lat_shape *s);

/* ------------------------------------------------------------------------- */
/* Inputs: shapes and value distributions                                    */
/* ------------------------------------------------------------------------- */

/* x below is a standard normal draw; a, b, c are the spec's parameters. */
typedef enum {
    LAT_DIST_NONE = 0,    /* no value (an unset harsh variant)              */
    LAT_DIST_NORMAL,      /* a·x + b                                        */
    LAT_DIST_UNIFORM,     /* U(a, b)                                        */
    LAT_DIST_LOGSIGMOID,  /* logsigmoid(a·x + b) / c   (log-space gate ≤ 0) */
    LAT_DIST_SIGMOID,     /* sigmoid(a·x + b)          (beta, gates in 0..1)*/
    LAT_DIST_SOFTPLUS,    /* softplus(a·x + b)         (dt > 0)             */
    LAT_DIST_UNIT_NORMAL, /* normal, then each last-dim row L2-normalized   */
    LAT_DIST_CONST,       /* a                                              */
    LAT_DIST_CUSTOM,      /* the spec's `custom` generator                  */
} lat_dist;

struct lat_rng;
/* The harness's seeded RNG, for custom generators (suites/harness/rng.c). */
double lat_rng_uniform(struct lat_rng *r); /* [0, 1) */
double lat_rng_normal(struct lat_rng *r);  /* N(0, 1) */
/* Custom generator: fill x (count values, laid out by the input's dims). */
typedef void (*lat_gen_fn)(double *x, size_t count, const lat_shape *s,
                           struct lat_rng *rng, int harsh);

typedef struct lat_input {
    const char *name; /* also the .npy file name with --dump */
    lat_dims_fn dims;
    lat_dist dist;
    double a, b, c;
    /* The "harsh" variant used by `latbench check` (extreme gates);
     * LAT_DIST_NONE → the typical distribution is used there too. */
    lat_dist harsh_dist;
    double ha, hb, hc;
    lat_gen_fn custom;
    const char *doc;
    /* accuracy-suite roles: `sharpen` inputs (queries/keys) are multiplied by
     * the suite's sharpness factor; `redraw` inputs (random feature matrices)
     * get a fresh seed for each of the ≥ 5 draws of accuracy II. */
    int sharpen, redraw;
    /* 1: a parameter, not per token (A_log [D][N], a skip vector, random
     * feature matrices): the decode check passes it whole to every step
     * instead of slicing token t out of a [B][T][…] layout. */
    int whole;
} lat_input;

/* ------------------------------------------------------------------------- */
/* Calls                                                                      */
/* ------------------------------------------------------------------------- */

/* Arguments of an optimized fp32 form. All pointers are caller-owned. */
typedef struct lat_args {
    const lat_shape *shape;
    const float *const *in; /* in[i] laid out as method->inputs[i]          */
    const float *state_in;  /* NULL → the empty state                       */
    float *out;             /* method->out_dims                              */
    float *state_out;       /* NULL → not requested; may alias state_in     */
    void *work;             /* workspace of form->workspace(shape, threads) */
    size_t work_bytes;      /* bytes of work (64-byte aligned)               */
    int nthreads;           /* OpenMP threads the form may use              */
} lat_args;

typedef lat_status (*lat_form_fn)(const lat_args *a);
typedef size_t (*lat_size_fn)(const lat_shape *s, int nthreads);
typedef double (*lat_model_fn)(const lat_shape *s);

/* The fp64 reference: the paper's equations, literally. Same buffers as the
 * fp32 form, in double; state_in NULL → empty state. */
typedef lat_status (*lat_ref_fn)(const lat_shape *s, const double *const *in,
                                 const double *state_in, double *out,
                                 double *state_out);

typedef struct lat_form {
    const char *name;      /* "recurrent", "chunk", "parallel", "tiled", … */
    lat_form_fn run;
    lat_size_fn workspace; /* NULL → no workspace                          */
    lat_model_fn flops;    /* analytic FLOPs this form executes (FMA = 2)  */
    const char *doc;
} lat_form;

typedef struct lat_method {
    const char *name;     /* registry key, e.g. "gla"                       */
    const char *family;   /* "softmax", "linear", "gated-linear", "ssm", … */
    const char *paper;    /* short citation                                 */
    const char *summary;  /* one line for `latbench list`                   */
    const char *dim_map;  /* how a sweep's D maps to this method's sizes    */

    const lat_input *inputs;
    int n_inputs;
    const lat_knob *knobs;
    int n_knobs;
    const lat_form *forms;
    int n_forms;

    lat_dims_fn out_dims;   /* output tensor                                */
    lat_dims_fn state_dims; /* state tensor (per call); NULL → stateless    */
    /* Name of the form that is the decode step: called with T = 1, pos = t,
     * state_in == state_out (in place). NULL → no decode (non-causal only). */
    const char *decode_form;

    /* Fills K, V and knobs from a sweep's head dimension D (NULL → K = V = D). */
    void (*map_dim)(lat_shape *s, int D);
    /* Shape constraints beyond the knob ranges; writes the reason, returns
     * LAT_UNSUPPORTED or LAT_OK. NULL → everything allowed. */
    lat_status (*validate)(const lat_shape *s, char *why, size_t why_len);

    lat_model_fn bytes;       /* compulsory DRAM traffic model (STREAM way) */
    lat_model_fn state_bytes; /* bytes of decode state per the paper's formula */

    lat_ref_fn reference;     /* fp64 oracle: literal recurrence / masked dense */
    lat_ref_fn reference_alt; /* optional second fp64 form (e.g. quadratic) */

    /* Pass thresholds for fp32 vs fp64 (rel_rmse of output and state). */
    double tol_out, tol_state;
    int approximates_softmax; /* report error against exact softmax too     */
    /* fp64 exact softmax attention that this method approximates, on the same
     * inputs (its temperature, mask and window); NULL → not an approximation. */
    lat_ref_fn softmax_target;
    int quadratic;            /* cost grows as T² (skipped by the T = 65536
                                 robustness check, whose fp64 oracle would take
                                 hours)                                        */
    const char *tol_note;     /* why a tolerance is looser than 1e-5         */
} lat_method;

/* ------------------------------------------------------------------------- */
/* Registry (generated from impls/methods.def)                               */
/* ------------------------------------------------------------------------- */

#define LAT_METHOD(name) extern const lat_method lat_method_##name;
#include "../methods.def"
#ifdef LAT_EXTRA_METHODS /* test builds only: tests/negative.sh */
#include LAT_EXTRA_METHODS
#endif
#undef LAT_METHOD

int lat_method_count(void);
const lat_method *lat_method_at(int i);
const lat_method *lat_find_method(const char *name);
const lat_form *lat_find_form(const lat_method *m, const char *name);

/* Shape helpers: apply the method's knob defaults (and map_dim if D > 0),
 * validate the knob ranges and the method's own constraints. */
void lat_shape_defaults(const lat_method *m, lat_shape *s);
lat_status lat_shape_check(const lat_method *m, const lat_shape *s, char *why,
                           size_t why_len);
int lat_shape_ctx(const lat_shape *s); /* ctx, or pos + T when ctx = 0 */

#ifdef __cplusplus
}
#endif
#endif
