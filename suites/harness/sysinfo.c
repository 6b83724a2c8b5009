/* sysinfo.c — meta.json: everything needed to interpret a number later —
 * machine and cache topology (hwloc), the cores the OpenMP threads actually
 * ran on, compiler and flags, commit, OpenBLAS core and threads, OMP binding,
 * and the measured ceilings (roofline). */
#include <hwloc.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>
#include <sys/wait.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "build_info.h"
#include "harness.h"

const char *lat_impl_isa(void);

const char *lat_git_commit(void) { return LAT_GIT_DIRTY ? LAT_GIT_COMMIT "-dirty" : LAT_GIT_COMMIT; }

void lat_cpu_model(char *buf, size_t len)
{
    snprintf(buf, len, "unknown");
    FILE *f = fopen("/proc/cpuinfo", "r");
    char line[512];
    if (!f)
        return;
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "model name", 10) == 0) {
            char *c = strchr(line, ':');
            if (c) {
                c += 2;
                c[strcspn(c, "\n")] = 0;
                snprintf(buf, len, "%s", c);
            }
            break;
        }
    }
    fclose(f);
}

static void json_str(FILE *f, const char *key, const char *val, int comma)
{
    fprintf(f, "  \"%s\": \"", key);
    for (const char *p = val ? val : ""; *p; p++) {
        if (*p == '"' || *p == '\\')
            fputc('\\', f);
        if ((unsigned char)*p < 0x20)
            fputc(' ', f);
        else
            fputc(*p, f);
    }
    fprintf(f, "\"%s\n", comma ? "," : "");
}

static void read_first_line(const char *path, char *buf, size_t len)
{
    buf[0] = 0;
    FILE *f = fopen(path, "r");
    if (!f)
        return;
    if (fgets(buf, (int)len, f))
        buf[strcspn(buf, "\n")] = 0;
    fclose(f);
}

static void command_line(const char *cmd, char *buf, size_t len)
{
    buf[0] = 0;
    FILE *p = popen(cmd, "r");
    if (!p)
        return;
    if (fgets(buf, (int)len, p))
        buf[strcspn(buf, "\n")] = 0;
    pclose(p);
}

static void write_caches(FILE *f, hwloc_topology_t topo)
{
    fprintf(f, "  \"caches\": [");
    int first = 1;
    for (int depth = 0; depth < hwloc_topology_get_depth(topo); depth++) {
        hwloc_obj_t o = hwloc_get_obj_by_depth(topo, depth, 0);
        if (!o || !hwloc_obj_type_is_cache(o->type))
            continue;
        int count = hwloc_get_nbobjs_by_depth(topo, depth);
        fprintf(f, "%s\n    {\"level\": %u, \"type\": \"%s\", \"size\": %llu, \"linesize\": %u, "
                   "\"associativity\": %d, \"count\": %d}",
                first ? "" : ",", o->attr->cache.depth,
                o->attr->cache.type == HWLOC_OBJ_CACHE_INSTRUCTION ? "instruction"
                : o->attr->cache.type == HWLOC_OBJ_CACHE_DATA      ? "data"
                                                                   : "unified",
                (unsigned long long)o->attr->cache.size, o->attr->cache.linesize,
                o->attr->cache.associativity, count);
        first = 0;
    }
    fprintf(f, "\n  ],\n");
}

/* The PU each OpenMP thread runs on, as hwloc sees it after binding; found in
 * a child process (lat_in_child: no OpenMP pool in the parent). */
typedef struct { hwloc_topology_t topo; int n; } cpu_probe;

static void probe_cpus(void *arg, void *out)
{
    cpu_probe *p = arg;
    int *cpus = out;
    for (int i = 0; i < 256; i++)
        cpus[i] = -1;
#ifdef _OPENMP
#pragma omp parallel num_threads(p->n)
    {
        hwloc_bitmap_t set = hwloc_bitmap_alloc();
        if (hwloc_get_last_cpu_location(p->topo, set, HWLOC_CPUBIND_THREAD) == 0) {
            int id = omp_get_thread_num();
            if (id < 256)
                cpus[id] = hwloc_bitmap_first(set);
        }
        hwloc_bitmap_free(set);
    }
#endif
}

static void write_thread_cpus(FILE *f, hwloc_topology_t topo)
{
    int cpus[256];
    cpu_probe p = {topo, lat_max_threads()};
    if (lat_in_child(probe_cpus, &p, cpus, sizeof cpus) != 0)
        for (int i = 0; i < 256; i++)
            cpus[i] = -1;
    fprintf(f, "  \"omp_thread_cpus\": [");
    for (int i = 0; i < p.n && i < 256; i++)
        fprintf(f, "%s%d", i ? ", " : "", cpus[i]);
    fprintf(f, "],\n");
}

static void write_array(FILE *f, const char *key, const double *v, int n)
{
    fprintf(f, "  \"%s\": {", key);
    int first = 1;
    for (int t = 1; t <= n; t++) {
        if (v[t] <= 0)
            continue;
        fprintf(f, "%s\"%d\": %.3f", first ? "" : ", ", t, v[t]);
        first = 0;
    }
    fprintf(f, "},\n");
}

int lat_write_meta(const char *dir, const char *run_id, const lat_roof *roof, const char *suite)
{
    char path[4200], tmp[4300];
    snprintf(path, sizeof path, "%s/meta.json", dir);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f)
        return -1;
    hwloc_topology_t topo;
    hwloc_topology_init(&topo);
    hwloc_topology_load(topo);

    char buf[1024], host[256] = "";
    struct utsname u;
    uname(&u);
    gethostname(host, sizeof host);
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    char date[64];
    strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%SZ", &tm);

    fprintf(f, "{\n  \"schema_version\": %d,\n", LAT_SCHEMA_VERSION);
    json_str(f, "run_id", run_id, 1);
    json_str(f, "suite", suite ? suite : "", 1);
    json_str(f, "date_utc", date, 1);
    json_str(f, "git_commit", LAT_GIT_COMMIT, 1);
    fprintf(f, "  \"git_dirty\": %s,\n", LAT_GIT_DIRTY ? "true" : "false");
    json_str(f, "host", host, 1);
    lat_cpu_model(buf, sizeof buf);
    json_str(f, "cpu_model", buf, 1);
    fprintf(f, "  \"sockets\": %d,\n  \"cores\": %d,\n  \"pus\": %d,\n  \"numa_nodes\": %d,\n",
            hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_PACKAGE), hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_CORE),
            hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_PU), hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_NUMANODE));
    write_caches(f, topo);
    read_first_line("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor", buf, sizeof buf);
    json_str(f, "governor", buf[0] ? buf : "unavailable", 1);
    read_first_line("/proc/sys/kernel/randomize_va_space", buf, sizeof buf);
    json_str(f, "aslr", buf, 1);
    read_first_line("/proc/loadavg", buf, sizeof buf);
    json_str(f, "load_avg", buf, 1);
    snprintf(buf, sizeof buf, "%s %s %s", u.sysname, u.release, u.machine);
    json_str(f, "kernel", buf, 1);
    json_str(f, "compiler", LAT_CC_VERSION, 1);
    json_str(f, "cflags_impl", LAT_CFLAGS_IMPL, 1);
    json_str(f, "cflags_ref", LAT_CFLAGS_REF, 1);
    json_str(f, "optional_libs", LAT_OPTIONAL_LIBS[0] ? LAT_OPTIONAL_LIBS : "none", 1);
    json_str(f, "impl_isa", lat_impl_isa(), 1);
    json_str(f, "ftz_daz", "on (fp32 paths)", 1);
#ifdef _OPENMP
    fprintf(f, "  \"openmp_version\": %d,\n", _OPENMP);
    fprintf(f, "  \"omp_proc_bind\": %d,\n  \"omp_num_places\": %d,\n", (int)omp_get_proc_bind(),
            omp_get_num_places());
#endif
    const char *envs[] = {"OMP_NUM_THREADS", "OMP_PLACES", "OMP_PROC_BIND", "OPENBLAS_NUM_THREADS",
                          "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"};
    for (size_t i = 0; i < sizeof envs / sizeof envs[0]; i++) {
        const char *v = getenv(envs[i]);
        json_str(f, envs[i], v ? v : "", 1);
    }
    write_thread_cpus(f, topo);
    json_str(f, "openblas_config", lat_blas_config(), 1);
    json_str(f, "openblas_core", lat_blas_core(), 1);
    fprintf(f, "  \"openblas_num_threads\": %d,\n", lat_blas_num_threads());
    unsigned hv = hwloc_get_api_version();
    snprintf(buf, sizeof buf, "%u.%u.%u", hv >> 16, (hv >> 8) & 0xff, hv & 0xff);
    json_str(f, "hwloc_version", buf, 1);
    command_line("gnuplot --version 2>/dev/null", buf, sizeof buf);
    json_str(f, "gnuplot_version", buf, 1);
    if (roof) {
        write_array(f, "sgemm_gflops", roof->sgemm_gflops, 64);
        write_array(f, "triad_gbs", roof->triad_gbs, 64);
        write_array(f, "fma_peak_gflops", roof->fma_peak_gflops, 64);
        write_array(f, "sgemm64_gflops", roof->sgemm64_gflops, 64);
        fprintf(f, "  \"peak_gflops_theoretical\": %.3f,\n", roof->peak_gflops_theory);
    }
    fprintf(f, "  \"max_threads\": %d\n}\n", lat_max_threads());
    hwloc_topology_destroy(topo);
    int ok = fclose(f) == 0;
    if (!ok || rename(tmp, path) != 0) {
        unlink(tmp);
        return -1;
    }
    return 0;
}

size_t lat_llc_bytes(void)
{
    hwloc_topology_t topo;
    hwloc_topology_init(&topo);
    hwloc_topology_load(topo);
    size_t best = 0;
    for (int depth = 0; depth < hwloc_topology_get_depth(topo); depth++) {
        hwloc_obj_t o = hwloc_get_obj_by_depth(topo, depth, 0);
        if (o && hwloc_obj_type_is_cache(o->type) && o->attr->cache.size > best)
            best = o->attr->cache.size;
    }
    hwloc_topology_destroy(topo);
    return best ? best : (size_t)32 << 20;
}
