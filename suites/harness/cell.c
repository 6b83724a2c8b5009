/* cell.c — run one cell the honest way: in a fresh child process, inputs from
 * the seed, warm-up, then repetitions until both a minimum count and a minimum
 * time are reached; median with spread; allocator high-water mark and peak
 * RSS of the child; then (optionally) accuracy against the fp64 reference on
 * the same inputs, and the .npy dump. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "cell.h"

static double maxrss_bytes(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_maxrss * 1024.0;
}

void lat_knob_string(const lat_method *m, const lat_shape *s, char *buf, size_t len)
{
    buf[0] = 0;
    for (int i = 0; i < m->n_knobs; i++) {
        char t[64];
        snprintf(t, sizeof t, "%s%s=%d", i ? ";" : "", m->knobs[i].name,
                 *(const int *)((const char *)s + m->knobs[i].offset));
        strncat(buf, t, len - strlen(buf) - 1);
    }
    if (s->pos) {
        char t[64];
        snprintf(t, sizeof t, "%spos=%d", buf[0] ? ";" : "", s->pos);
        strncat(buf, t, len - strlen(buf) - 1);
    }
    if (!buf[0])
        snprintf(buf, len, "-");
}

static void set_state(lat_result *r, const char *st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void set_state(lat_result *r, const char *st, const char *fmt, ...)
{
    snprintf(r->state, sizeof r->state, "%s", st);
    if (fmt) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(r->reason, sizeof r->reason, fmt, ap);
        va_end(ap);
    }
}

/* ---- dump ------------------------------------------------------------------ */
static int dump_tensor(const char *dir, const char *name, const void *x, int is_f64, lat_dims_fn dims,
                       const lat_shape *s)
{
    char path[4200];
    size_t d[8];
    int rank = dims(s, d);
    snprintf(path, sizeof path, "%s/%s.npy", dir, name);
    return lat_npy_write(path, x, is_f64, d, rank);
}

/* shape.json: the call as resolved (sizes, pos, ctx and every knob of the
 * method), so that an independent checker (scripts/crosscheck.py) can rebuild it. */
static int dump_shape(const char *dir, const lat_method *m, const lat_form *f, const lat_shape *s)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/shape.json", dir);
    FILE *fp = fopen(path, "w");
    if (!fp)
        return -1;
    fprintf(fp, "{\"method\": \"%s\", \"form\": \"%s\", \"B\": %d, \"T\": %d, \"H\": %d, \"K\": %d, "
                "\"V\": %d, \"pos\": %d, \"ctx\": %d, \"knobs\": {",
            m->name, f->name, s->B, s->T, s->H, s->K, s->V, s->pos, lat_shape_ctx(s));
    for (int i = 0; i < m->n_knobs; i++)
        fprintf(fp, "%s\"%s\": %d", i ? ", " : "", m->knobs[i].name,
                *(const int *)((const char *)s + m->knobs[i].offset));
    fprintf(fp, "}}\n");
    return fclose(fp) ? -1 : 0;
}

static int dump_all(const lat_cell *c, const lat_problem *p, const double *ref_out, const double *ref_state)
{
    const lat_method *m = c->m;
    int rc = dump_shape(c->dump_dir, m, c->f, &p->s);
    for (int i = 0; i < m->n_inputs; i++)
        rc |= dump_tensor(c->dump_dir, m->inputs[i].name, p->in32[i], 0, m->inputs[i].dims, &p->s);
    rc |= dump_tensor(c->dump_dir, "out", p->out32, 0, m->out_dims, &p->s);
    rc |= dump_tensor(c->dump_dir, "ref_out", ref_out, 1, m->out_dims, &p->s);
    if (m->state_dims && p->state_out32) {
        rc |= dump_tensor(c->dump_dir, "state_out", p->state_out32, 0, m->state_dims, &p->s);
        rc |= dump_tensor(c->dump_dir, "ref_state_out", ref_state, 1, m->state_dims, &p->s);
    }
    return rc;
}

/* ---- the child ------------------------------------------------------------- */
static void accuracy(const lat_cell *c, lat_result *r)
{
    lat_problem p;
    const lat_method *m = c->m;
    if (lat_problem_init(&p, m, &c->s, c->seed, c->harsh, 1) ||
        lat_problem_buffers(&p, c->f, c->threads, 1)) {
        set_state(r, "failed", "out of memory for the accuracy check");
        lat_problem_free(&p);
        return;
    }
    lat_status st = lat_problem_run(&p, c->f, c->threads, 1);
    double *ref = lat_alloc(p.out_count * sizeof(double));
    double *ref_state = p.state_count ? lat_alloc(p.state_count * sizeof(double)) : NULL;
    if (!ref || (p.state_count && !ref_state)) {
        set_state(r, "failed", "out of memory for the fp64 reference");
        goto done;
    }
    if (st != LAT_OK) {
        set_state(r, "failed", "form returned %s on the accuracy run", lat_status_name(st));
        goto done;
    }
    st = m->reference(&p.s, (const double *const *)p.in64, NULL, ref, ref_state);
    if (st != LAT_OK) {
        set_state(r, "failed", "reference returned %s", lat_status_name(st));
        goto done;
    }
    size_t d[8];
    int rank = m->out_dims(&p.s, d);
    r->has_acc = 1;
    r->err = lat_compare_f32(p.out32, ref, p.out_count, d[rank - 1]);
    if (p.state_count) {
        rank = m->state_dims(&p.s, d);
        r->state_err = lat_compare_f32(p.state_out32, ref_state, p.state_count, d[rank - 1]);
    }
    r->acc_pass = r->err.nonfinite == 0 && r->state_err.nonfinite == 0 &&
                  (r->err.rel_rmse <= m->tol_out || r->err.max_abs <= 1e-6) &&
                  (!p.state_count || r->state_err.rel_rmse <= m->tol_state || r->state_err.max_abs <= 1e-6);
    if (!r->acc_pass && strcmp(r->state, "ok") == 0)
        set_state(r, "failed", "accuracy: rel_rmse %.3g (tolerance %.3g), state %.3g, %ld non-finite",
                  r->err.rel_rmse, m->tol_out, r->state_err.rel_rmse, r->err.nonfinite);
    if (c->dump_dir && dump_all(c, &p, ref, ref_state))
        set_state(r, "failed", "could not write the .npy dump into %s", c->dump_dir);
done:
    lat_free(ref);
    lat_free(ref_state);
    lat_problem_free(&p);
}

/* Warm-up then timed repetitions of one call; fills r->t and samples. */
static int time_calls(const lat_cell *c, lat_problem *p, lat_result *r, int want_state)
{
    double t0 = lat_now_ns();
    do {
        lat_status st = lat_problem_run(p, c->f, c->threads, want_state);
        r->warmup_reps++;
        if (st != LAT_OK) {
            r->status = st;
            if (st == LAT_UNSUPPORTED)
                set_state(r, "unsupported", "form returned unsupported");
            else
                set_state(r, "failed", "form returned %s", lat_status_name(st));
            return -1;
        }
    } while (lat_now_ns() - t0 < c->warmup_s * 1e9);
    /* timed calls do not re-poison the buffers (filling a large workspace
     * with NaN is not the method's work); the warm-up above ran poisoned */
    double total = 0;
    int n = 0;
    while (n < LAT_MAX_SAMPLES && (n < c->min_reps || total < c->min_time_s * 1e9)) {
        double a = lat_now_ns();
        lat_problem_call(p, c->f, c->threads, want_state);
        double dt = lat_now_ns() - a;
        r->samples[n++] = dt;
        total += dt;
    }
    r->nsamples = n;
    r->t = lat_stats_compute(r->samples, n);
    set_state(r, r->t.cv > 0.05 ? "noisy" : "ok", NULL);
    return 0;
}

static int all_finite(const float *x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!isfinite(x[i]))
            return 0;
    return 1;
}

static void bench_main(const lat_cell *c, lat_result *r)
{
    lat_problem p;
    lat_alloc_reset_peak();
    if (lat_problem_init(&p, c->m, &c->s, c->seed, c->harsh, 0) || lat_problem_buffers(&p, c->f, c->threads, 0)) {
        set_state(r, "refused", "allocation of %.3g bytes failed", r->mem_estimate_bytes);
        lat_problem_free(&p);
        return;
    }
    if (time_calls(c, &p, r, 0) == 0) {
        r->alloc_peak_bytes = (double)lat_alloc_peak();
        r->peak_rss_bytes = maxrss_bytes();
        double sec = r->t.median * 1e-9;
        r->tokens_per_s = (double)c->s.B * c->s.T / sec;
        r->gflops = r->flops / sec * 1e-9;
        r->gbytes_per_s = r->bytes_model / sec * 1e-9;
        r->flop_per_byte = r->bytes_model > 0 ? r->flops / r->bytes_model : 0;
    }
    lat_problem_free(&p);
    if (strcmp(r->state, "ok") && strcmp(r->state, "noisy"))
        return;
    if (c->accuracy || c->dump_dir)
        accuracy(c, r);
}

/* Decode: one token at context pos, the state filled with N(0, 0.1²) values
 * (KV caches hold exactly such k, v rows; the timing of a recurrent update
 * does not depend on the values, and FTZ keeps denormals out). */
static void decode_main(const lat_cell *c, lat_result *r)
{
    lat_problem p;
    lat_alloc_reset_peak();
    if (lat_problem_init(&p, c->m, &c->s, c->seed, 0, 0) || lat_problem_buffers(&p, c->f, c->threads, 0)) {
        set_state(r, "refused", "allocation of %.3g bytes failed", r->mem_estimate_bytes);
        lat_problem_free(&p);
        return;
    }
    if (!p.state_count) {
        set_state(r, "unsupported", "method keeps no state");
        lat_problem_free(&p);
        return;
    }
    p.state_in32 = lat_alloc(p.state_count * sizeof(float));
    lat_rng rng;
    lat_rng_seed(&rng, c->seed + 99);
    for (size_t i = 0; i < p.state_count; i++)
        p.state_in32[i] = (float)(0.1 * lat_rng_normal(&rng));
    p.state_out32 = p.state_in32; /* in place, as in generation */
    r->state_bytes_measured = (double)p.state_count * sizeof(float);
    if (time_calls(c, &p, r, 1) == 0) {
        r->alloc_peak_bytes = (double)lat_alloc_peak();
        r->peak_rss_bytes = maxrss_bytes();
        r->tokens_per_s = (double)c->s.B / (r->t.median * 1e-9);
        r->gflops = r->flops / (r->t.median * 1e-9) * 1e-9;
        if (!all_finite(p.out32, p.out_count))
            set_state(r, "failed", "decode output is not finite");
    }
    p.state_out32 = NULL;
    lat_problem_free(&p);
}

/* Accuracy: the form against the fp64 reference (type I) and, for softmax
 * approximations, against exact softmax (type II) over `draws` draws. */
static void accuracy_main(const lat_cell *c, lat_result *r)
{
    const lat_method *m = c->m;
    lat_problem p;
    if (lat_problem_init(&p, m, &c->s, c->seed, c->harsh, 1) || lat_problem_buffers(&p, c->f, c->threads, 1)) {
        set_state(r, "refused", "allocation failed");
        lat_problem_free(&p);
        return;
    }
    lat_problem_sharpen(&p, c->sharp);
    double *ref = lat_alloc(p.out_count * sizeof(double));
    double *ref_state = p.state_count ? lat_alloc(p.state_count * sizeof(double)) : NULL;
    double *sm = m->softmax_target ? lat_alloc(p.out_count * sizeof(double)) : NULL;
    size_t d[8];
    int rank = m->out_dims(&p.s, d);
    size_t row = d[rank - 1];
    int draws = m->softmax_target && c->draws > 1 ? c->draws : 1;
    double sum = 0, sum2 = 0, smax = 0;
    lat_err first = {0}, first_state = {0};
    for (int k = 0; k < draws; k++) {
        if (k > 0 && lat_problem_redraw(&p, c->seed, k, c->harsh))
            break;
        lat_status st = lat_problem_run(&p, c->f, c->threads, 1);
        if (st != LAT_OK) {
            set_state(r, st == LAT_UNSUPPORTED ? "unsupported" : "failed", "form returned %s", lat_status_name(st));
            goto done;
        }
        if (m->reference(&p.s, (const double *const *)p.in64, NULL, ref, ref_state) != LAT_OK) {
            set_state(r, "failed", "reference failed");
            goto done;
        }
        lat_err e = lat_compare_f32(p.out32, ref, p.out_count, row);
        if (k == 0) {
            first = e;
            if (p.state_count) {
                int sr = m->state_dims(&p.s, d);
                first_state = lat_compare_f32(p.state_out32, ref_state, p.state_count, d[sr - 1]);
            }
        }
        if (sm && m->softmax_target(&p.s, (const double *const *)p.in64, NULL, sm, NULL) == LAT_OK) {
            lat_err x = lat_compare_f64(ref, sm, p.out_count, row);
            sum += x.rel_rmse;
            sum2 += x.rel_rmse * x.rel_rmse;
            if (x.max_abs > smax)
                smax = x.max_abs;
            r->has_sm = k + 1;
        }
    }
    r->has_acc = 1;
    r->err = first;
    r->state_err = first_state;
    r->acc_pass = first.nonfinite == 0 && (first.rel_rmse <= m->tol_out || first.max_abs <= 1e-6);
    if (r->has_sm) {
        double n = r->has_sm;
        r->sm_rel_rmse = sum / n;
        r->sm_rel_rmse_std = n > 1 ? sqrt(fmax(0, (sum2 - sum * sum / n) / (n - 1))) : 0;
        r->sm_max_abs = smax;
    }
    set_state(r, "ok", NULL);
done:
    lat_free(ref);
    lat_free(ref_state);
    lat_free(sm);
    lat_problem_free(&p);
}

static void child_main(const lat_cell *c, lat_result *r)
{
    const lat_method *m = c->m;
    lat_set_ftz();
#ifdef _OPENMP
    omp_set_num_threads(c->threads);
#endif
    r->rss_baseline_bytes = maxrss_bytes();
    r->flops = c->f->flops ? c->f->flops(&c->s) : 0;
    r->bytes_model = m->bytes ? m->bytes(&c->s) : 0;
    r->state_bytes = m->state_bytes ? m->state_bytes(&c->s) : 0;
    r->workspace_bytes = c->f->workspace ? (double)c->f->workspace(&c->s, c->threads) : 0;
    if (c->mode == LAT_MODE_DECODE)
        decode_main(c, r);
    else if (c->mode == LAT_MODE_ACCURACY)
        accuracy_main(c, r);
    else
        bench_main(c, r);
}

int lat_cell_run(const lat_cell *c, lat_result *r)
{
    memset(r, 0, sizeof *r);
    set_state(r, "ok", NULL);
    char why[256] = "";
    if (lat_shape_check(c->m, &c->s, why, sizeof why) != LAT_OK) {
        r->status = LAT_UNSUPPORTED;
        set_state(r, "unsupported", "%s", why);
        return 0;
    }
    r->mem_estimate_bytes = lat_problem_estimate(c->m, &c->s, c->f, c->threads,
                                                 c->accuracy || c->dump_dir || c->mode == LAT_MODE_ACCURACY);
    double avail = (double)lat_mem_available();
    if (r->mem_estimate_bytes > 0.9 * avail) {
        set_state(r, "refused", "needs about %.2f GiB, %.2f GiB available", r->mem_estimate_bytes / 1073741824.0,
                  avail / 1073741824.0);
        return 0;
    }
    int fd[2];
    if (pipe(fd))
        return -1;
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        close(fd[0]);
        close(fd[1]);
        return -1;
    }
    if (pid == 0) {
        close(fd[0]);
        signal(SIGINT, SIG_IGN); /* the parent decides when to stop */
        lat_result *cr = calloc(1, sizeof *cr);
        *cr = *r;
        child_main(c, cr);
        const char *p = (const char *)cr;
        size_t left = sizeof *cr;
        int rc = 0;
        while (left) {
            ssize_t w = write(fd[1], p, left);
            if (w <= 0) {
                rc = 3;
                break;
            }
            p += w;
            left -= (size_t)w;
        }
        free(cr);
        _exit(rc);
    }
    close(fd[1]);
    size_t got = 0;
    char *dst = (char *)r;
    lat_result tmp;
    memcpy(&tmp, r, sizeof tmp);
    while (got < sizeof *r) {
        ssize_t n = read(fd[0], dst + got, sizeof *r - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    close(fd[0]);
    int wst = 0;
    while (waitpid(pid, &wst, 0) < 0 && errno == EINTR)
        ;
    if (got != sizeof *r) {
        memcpy(r, &tmp, sizeof tmp);
        r->status = LAT_EINVAL;
        if (WIFSIGNALED(wst))
            set_state(r, "crashed", "cell process killed by signal %d (%s)", WTERMSIG(wst), strsignal(WTERMSIG(wst)));
        else
            set_state(r, "crashed", "cell process exited with status %d before reporting", WEXITSTATUS(wst));
    }
    return 0;
}

/* ---- output ---------------------------------------------------------------- */
const char *lat_bench_header(void)
{
    return "schema_version,run_id,grid,method,form,dtype,B,T,H,K,V,knobs,threads,seed,harsh,status,reason,"
           "warmup_reps,reps,t_min_ns,t_p20_ns,t_med_ns,t_p80_ns,t_max_ns,t_mean_ns,t_std_ns,cv,outliers,"
           "tokens_per_s,gflops,gbytes_per_s,flop_per_byte,flops,bytes_model,state_bytes,workspace_bytes,"
           "alloc_peak_bytes,peak_rss_bytes,rss_baseline_bytes,rel_rmse,max_abs,nmse,worst_row,"
           "state_rel_rmse,acc_pass,cell_key\n";
}

const char *lat_decode_header(void)
{
    return "schema_version,run_id,grid,method,form,B,H,K,V,knobs,threads,ctx,status,reason,reps,t_min_ns,"
           "t_p20_ns,t_med_ns,t_p80_ns,t_max_ns,cv,tokens_per_s,gflops,state_bytes,state_bytes_measured,"
           "kv_cache_bytes_equiv,cell_key\n";
}

const char *lat_accuracy_header(void)
{
    return "schema_version,run_id,grid,method,form,B,T,H,K,V,knobs,threads,seed,inputs,sharpness,draws,status,"
           "reason,rel_rmse,max_abs,nmse,worst_row,state_rel_rmse,tol,passed,vs_softmax_rel_rmse,"
           "vs_softmax_rel_rmse_std,vs_softmax_max_abs,cell_key\n";
}

static void csv_clean(char *dst, const char *src, size_t len)
{
    size_t i = 0;
    for (; src && src[i] && i + 1 < len; i++)
        dst[i] = (src[i] == ',' || src[i] == '\n' || src[i] == '"') ? ';' : src[i];
    dst[i] = 0;
}

/* All or nothing: a row that cannot be written whole (disk full, file size
 * limit, I/O error) is cut off again, so the file keeps only complete rows. */
static int write_all(int fd, const char *buf, size_t len)
{
    ssize_t w = write(fd, buf, len);
    if (w == (ssize_t)len)
        return 1;
    if (w >= 0)
        errno = ENOSPC; /* a short write: the device or the file size limit is full */
    return 0;
}

int lat_csv_append_line(const char *path, const char *header, const char *line)
{
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT, 0666);
    if (fd < 0)
        return -1;
    off_t end = lseek(fd, 0, SEEK_END);
    int ok = end >= 0;
    if (ok && end == 0)
        ok = write_all(fd, header, strlen(header));
    ok = ok && write_all(fd, line, strlen(line));
    ok = ok && fsync(fd) == 0;
    int saved = errno;
    if (!ok && end >= 0 && ftruncate(fd, end) != 0) {
        /* the cut failed too: the error below is what the caller reports */
    }
    ok = (close(fd) == 0) && ok;
    if (!ok)
        errno = saved ? saved : EIO;
    return ok ? 0 : -1;
}

int lat_bench_append(const char *path, const char *run_id, const lat_cell *c, const lat_result *r)
{
    char knobs[256], reason[256], key[512], line[4096];
    lat_knob_string(c->m, &c->s, knobs, sizeof knobs);
    csv_clean(reason, r->reason, sizeof reason);
    csv_clean(key, c->key ? c->key : "", sizeof key);
    char acc[256] = ",,,,,";
    if (r->has_acc)
        snprintf(acc, sizeof acc, "%.4g,%.4g,%.4g,%.4g,%.4g,%d", r->err.rel_rmse, r->err.max_abs, r->err.nmse,
                 r->err.worst_row, r->state_err.rel_rmse, r->acc_pass);
    int n = snprintf(line, sizeof line,
                     "%d,%s,%s,%s,%s,fp32,%d,%d,%d,%d,%d,%s,%d,%llu,%d,%s,%s,%d,%d,%.0f,%.0f,%.0f,%.0f,%.0f,%.0f,"
                     "%.0f,%.4f,%d,%.6g,%.6g,%.6g,%.6g,%.6g,%.6g,%.6g,%.0f,%.0f,%.0f,%.0f,%s,%s\n",
                     LAT_SCHEMA_VERSION, run_id, c->grid ? c->grid : "run", c->m->name, c->f->name, c->s.B, c->s.T,
                     c->s.H, c->s.K, c->s.V, knobs, c->threads, (unsigned long long)c->seed, c->harsh, r->state,
                     reason, r->warmup_reps, r->t.n, r->t.min, r->t.p20, r->t.median, r->t.p80, r->t.max,
                     r->t.mean, r->t.std, r->t.cv, r->t.outliers, r->tokens_per_s, r->gflops, r->gbytes_per_s,
                     r->flop_per_byte, r->flops, r->bytes_model, r->state_bytes, r->workspace_bytes,
                     r->alloc_peak_bytes, r->peak_rss_bytes, r->rss_baseline_bytes, acc, key);
    if (n <= 0 || n >= (int)sizeof line)
        return -1;
    return lat_csv_append_line(path, lat_bench_header(), line);
}

int lat_decode_append(const char *path, const char *run_id, const lat_cell *c, const lat_result *r)
{
    char knobs[256], reason[256], key[512], line[4096];
    lat_knob_string(c->m, &c->s, knobs, sizeof knobs);
    csv_clean(reason, r->reason, sizeof reason);
    csv_clean(key, c->key ? c->key : "", sizeof key);
    /* what a KV cache of the same context would hold, for comparison */
    double kv = 4.0 * c->s.B * c->s.H * (double)(c->s.pos + 1) * (c->s.K + c->s.V);
    int n = snprintf(line, sizeof line,
                     "%d,%s,%s,%s,%s,%d,%d,%d,%d,%s,%d,%d,%s,%s,%d,%.0f,%.0f,%.0f,%.0f,%.0f,%.4f,%.6g,%.6g,%.0f,"
                     "%.0f,%.0f,%s\n",
                     LAT_SCHEMA_VERSION, run_id, c->grid ? c->grid : "run", c->m->name, c->f->name, c->s.B, c->s.H,
                     c->s.K, c->s.V, knobs, c->threads, c->s.pos, r->state, reason, r->t.n, r->t.min, r->t.p20,
                     r->t.median, r->t.p80, r->t.max, r->t.cv, r->tokens_per_s, r->gflops, r->state_bytes,
                     r->state_bytes_measured, kv, key);
    if (n <= 0 || n >= (int)sizeof line)
        return -1;
    return lat_csv_append_line(path, lat_decode_header(), line);
}

int lat_accuracy_append(const char *path, const char *run_id, const lat_cell *c, const lat_result *r)
{
    char knobs[256], reason[256], key[512], line[4096], sm[128] = ",,";
    lat_knob_string(c->m, &c->s, knobs, sizeof knobs);
    csv_clean(reason, r->reason, sizeof reason);
    csv_clean(key, c->key ? c->key : "", sizeof key);
    if (r->has_sm)
        snprintf(sm, sizeof sm, "%.4g,%.4g,%.4g", r->sm_rel_rmse, r->sm_rel_rmse_std, r->sm_max_abs);
    int n = snprintf(line, sizeof line,
                     "%d,%s,%s,%s,%s,%d,%d,%d,%d,%d,%s,%d,%llu,%s,%g,%d,%s,%s,%.4g,%.4g,%.4g,%.4g,%.4g,%.0e,%d,%s,"
                     "%s\n",
                     LAT_SCHEMA_VERSION, run_id, c->grid ? c->grid : "run", c->m->name, c->f->name, c->s.B, c->s.T,
                     c->s.H, c->s.K, c->s.V, knobs, c->threads, (unsigned long long)c->seed,
                     c->harsh ? "harsh" : "typical", c->sharp, r->has_sm ? r->has_sm : 1, r->state, reason,
                     r->err.rel_rmse, r->err.max_abs, r->err.nmse, r->err.worst_row, r->state_err.rel_rmse,
                     c->m->tol_out, r->acc_pass, sm, key);
    if (n <= 0 || n >= (int)sizeof line)
        return -1;
    return lat_csv_append_line(path, lat_accuracy_header(), line);
}

int lat_samples_append(const char *path, const char *run_id, const lat_cell *c, const lat_result *r)
{
    char knobs[256];
    lat_knob_string(c->m, &c->s, knobs, sizeof knobs);
    size_t cap = 1024 + 24 * (size_t)r->nsamples, n = 0;
    char *line = malloc(cap);
    if (!line)
        return -1;
    n += (size_t)snprintf(line + n, cap - n,
                          "{\"run_id\": \"%s\", \"method\": \"%s\", \"form\": \"%s\", \"B\": %d, \"T\": %d, "
                          "\"H\": %d, \"K\": %d, \"V\": %d, \"knobs\": \"%s\", \"threads\": %d, \"samples_ns\": [",
                          run_id, c->m->name, c->f->name, c->s.B, c->s.T, c->s.H, c->s.K, c->s.V, knobs, c->threads);
    for (int i = 0; i < r->nsamples && n < cap; i++)
        n += (size_t)snprintf(line + n, cap - n, "%s%.0f", i ? ", " : "", r->samples[i]);
    if (n < cap)
        snprintf(line + n, cap - n, "]}\n");
    int rc = lat_csv_append_line(path, "", line); /* one JSON object per line, written whole or not at all */
    free(line);
    return rc;
}

void lat_print_result(FILE *f, const lat_cell *c, const lat_result *r)
{
    char knobs[256];
    lat_knob_string(c->m, &c->s, knobs, sizeof knobs);
    fprintf(f, "%s.%s B=%d T=%d H=%d K=%d V=%d [%s] threads=%d", c->m->name, c->f->name, c->s.B, c->s.T, c->s.H,
            c->s.K, c->s.V, knobs, c->threads);
    if (r->t.n) {
        fprintf(f, "  median %.3f ms (min %.3f, p20 %.3f, p80 %.3f, max %.3f, cv %.1f%%, %d reps)",
                r->t.median * 1e-6, r->t.min * 1e-6, r->t.p20 * 1e-6, r->t.p80 * 1e-6, r->t.max * 1e-6,
                100 * r->t.cv, r->t.n);
        fprintf(f, "  %.4g tokens/s  %.2f GFLOP/s  %.2f GB/s", r->tokens_per_s, r->gflops, r->gbytes_per_s);
        fprintf(f, "  model %.1f MiB  alloc peak %.1f MiB  peak RSS %.1f MiB (baseline %.1f)",
                r->bytes_model / 1048576.0, r->alloc_peak_bytes / 1048576.0, r->peak_rss_bytes / 1048576.0,
                r->rss_baseline_bytes / 1048576.0);
    }
    if (r->has_acc)
        fprintf(f, "  rel_rmse %.3g max_abs %.3g nmse %.3g worst_row %.3g state_rel_rmse %.3g", r->err.rel_rmse,
                r->err.max_abs, r->err.nmse, r->err.worst_row, r->state_err.rel_rmse);
    fprintf(f, "  status %s%s%s\n", r->state, r->reason[0] ? ": " : "", r->reason);
}
