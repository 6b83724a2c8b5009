/* claims.c — verdicts for data/claims.tsv from a run folder's own data.
 *
 * Predicate grammar (the TSV's `predicate` column):
 *
 *   predicate := { IDENT ':=' (expr | selector) ';' } ( 'na' '(' STRING ')' | bool )
 *   bool      := cmp { 'and' cmp }
 *   cmp       := expr ( relop expr | 'in' '[' expr ',' expr ']' )  |  '(' bool ')'
 *   relop     := '<=' | '>=' | '<' | '>' | '==' | '!='
 *   expr      := term { ('+' | '-') term }
 *   term      := unary { ('*' | '/') unary }
 *   unary     := '-' unary | power
 *   power     := primary [ '^' unary ]
 *   primary   := NUMBER | '(' expr ')' | IDENT (a definition) | call
 *   call      := math '(' expr ')'                      math: abs log log2 exp sqrt floor
 *              | ('max'|'min') '(' expr ',' expr ')'    element-wise (also in row expressions)
 *              | 'value' '(' sel ',' rowexpr ')'
 *              | ('max'|'min'|'mean'|'sum') '(' sel ',' rowexpr {',' COL} ')'
 *              | ('max'|'min'|'mean'|'sum') '(' expr ')'
 *              | 'count' '(' sel {',' COL} ')'
 *              | ('slope'|'min_step') '(' sel ',' COL ',' rowexpr {',' COL} ')'
 *              | 'at' '(' sel ',' COL ',' rowexpr ',' expr {',' COL} ')'
 *              | 'integral' '(' sel ',' COL ',' rowexpr ',' expr ',' expr {',' COL} ')'
 *              | 'crossover' '(' sel ',' sel ',' COL ',' rowexpr ')'
 *   sel       := TABLE '{' [ filter { ',' filter } ] '}'  |  IDENT (a selector definition)
 *   filter    := FIELD op VALUE { '|' VALUE }    op: = != < <= > >=
 *   rowexpr   := expr over the row's fields (columns, D = K, knob names) and math
 *
 * Tables: bench decode accuracy check roofline (schema from the harness), and
 * mqar budget maps (schema not fixed yet: fields are checked against the file).
 * Filter values: numbers compare numerically, other text exactly; `a|b` is
 * any of; a trailing `*` matches a prefix (grid=performer_M*); `max` / `min`
 * mean the largest / smallest value of that field in the whole table
 * (threads=max: the run's thread count). Rows whose status is not ok/noisy
 * are skipped unless the selector filters on status.
 *
 * Values are vectors. An element carries the value, the row's method.form for
 * display and a key: the identity columns (grid, method, form, B, T, H, K, V,
 * threads, ctx, …, and each knob) that the selector left free — a field
 * pinned to one value (or a glob) is dropped from the key, `pos` always is.
 * Series functions group rows by their key without X (or by the listed
 * columns). A binary operator pairs elements whose common key columns agree
 * (form and knobs are compared only between elements of the same method); a
 * single element pairs with everything. A comparison holds when every pair
 * does; an empty vector carries why it is empty (no file, no matching rows,
 * only unregistered methods). */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cell.h"
#include "check.h"
#include "claims.h"
#include "harness.h"
#include "mqar_ref.h"
#include "table.h"

/* ---- limits (the parser faces arbitrary bytes) ----------------------------- */
#define MAX_DEPTH 48      /* nesting of expressions                      */
#define MAX_COST 20000    /* nodes of the expanded tree (definitions)    */
#define MAX_DEFS 32
#define MAX_FILTERS 32
#define MAX_ALTS 64
#define MAX_BY 8
#define MAX_IDENT 63
#define MAX_STRING 400
#define MAX_PAIRS 4000000.0
#define MAX_NAMES 64

/* ---- arena: every parse and evaluation allocation, freed at once ---------- */
typedef struct ablock {
    struct ablock *next;
    size_t used, cap;
    max_align_t data[];
} ablock;

typedef struct arena {
    ablock *head;
} arena;

static void *amalloc(arena *a, size_t n)
{
    n = (n + sizeof(max_align_t) - 1) / sizeof(max_align_t) * sizeof(max_align_t);
    if (!a->head || a->head->cap - a->head->used < n) {
        size_t cap = n > 65536 ? n : 65536;
        ablock *b = malloc(sizeof *b + cap);
        if (!b)
            lat_die(1, "claims: out of memory");
        b->next = a->head;
        b->used = 0;
        b->cap = cap;
        a->head = b;
    }
    void *p = (char *)a->head->data + a->head->used;
    a->head->used += n;
    memset(p, 0, n);
    return p;
}

static char *astrndup(arena *a, const char *s, size_t n)
{
    char *p = amalloc(a, n + 1);
    memcpy(p, s, n);
    p[n] = 0;
    return p;
}

static char *astrdup(arena *a, const char *s)
{
    return astrndup(a, s, strlen(s));
}

static char *aprintf(arena *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static char *aprintf(arena *a, const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    return astrdup(a, buf);
}

static void afree(arena *a)
{
    while (a->head) {
        ablock *n = a->head->next;
        free(a->head);
        a->head = n;
    }
}

/* ---- bounded string builder ------------------------------------------------- */
typedef struct sbuf {
    char *s;
    size_t cap, len;
} sbuf;

static void sb_add(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_add(sbuf *b, const char *fmt, ...)
{
    if (b->len + 1 >= b->cap)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(b->s + b->len, b->cap - b->len, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    b->len += (size_t)n;
    if (b->len >= b->cap - 1) { /* truncated: mark it */
        b->len = b->cap - 1;
        if (b->cap > 8)
            memcpy(b->s + b->cap - 5, "…", 4);
    }
}

/* ---- what the predicates may name ----------------------------------------- */
enum { TB_BENCH, TB_DECODE, TB_ACCURACY, TB_CHECK, TB_ROOFLINE, TB_MQAR, TB_BUDGET, TB_MAPS, TB_N };
static const char *const k_tables[TB_N] = {"bench", "decode", "accuracy", "check",
                                           "roofline", "mqar", "budget", "maps"};
#define ROOFLINE_HEADER "threads,fma_peak_gflops,sgemm_gflops,sgemm64_gflops,triad_gbs,peak_gflops_theoretical\n"

/* The header a table's producer writes; NULL = schema not fixed yet. */
static const char *table_header(int t)
{
    switch (t) {
    case TB_BENCH: return lat_bench_header();
    case TB_DECODE: return lat_decode_header();
    case TB_ACCURACY: return lat_accuracy_header();
    case TB_CHECK: return LAT_CHECK_HEADER;
    case TB_ROOFLINE: return ROOFLINE_HEADER;
    default: return NULL;
    }
}

/* Columns that identify a row (the rest are measurements). */
static const char *const k_identity[] = {"grid",  "method", "form",  "dtype",  "cmp",   "tier",      "B",
                                         "T",     "H",      "K",     "V",      "D",     "L",         "pairs",
                                         "P",     "G",      "ctx",   "threads", "seed", "harsh",     "inputs",
                                         "sharpness", "draws", "lr", "pos",    NULL};
/* lat_shape's knob fields (a row's `knobs` column: "chunk=64;window=128"). */
static const char *const k_knobs[] = {"causal", "chunk",    "subchunk", "tile_q", "tile_k", "window",  "stride",
                                      "n_state", "features", "agents",  "expand", "groups", "variant", "pos", NULL};
/* Every method the project plans (issue 3); a name outside this list and the
 * registry is a typo. */
static const char *const k_planned[] = {
    "softmax", "sliding_window", "block_local", "sparse_strided", "longformer", "performer", "rfa",
    "flatten", "agent",          "efficientvit", "slab",          "based",      "based_hybrid", "linear_attn",
    "gla",     "retnet",         "deltanet",    "gated_deltanet", "hgrn2",      "mamba",        "mamba2",
    "rwkv6",   "s4d",            "mlstm",       "mobile_attention", "mla", "linrec", NULL};

static int in_list(const char *const *l, const char *s)
{
    for (; *l; l++)
        if (!strcmp(*l, s))
            return 1;
    return 0;
}

static int is_knob(const char *s)
{
    if (in_list(k_knobs, s))
        return 1;
    for (int i = 0; i < lat_method_count(); i++) {
        const lat_method *m = lat_method_at(i);
        for (int k = 0; k < m->n_knobs; k++)
            if (!strcmp(m->knobs[k].name, s))
                return 1;
    }
    return 0;
}

/* Tests only: LATBENCH_TEST_PLANNED="a,b" adds planned-but-unregistered
 * names, so the "method not yet implemented" verdict stays testable once
 * every planned method is registered (tests/claims.sh). */
static int test_planned(const char *s)
{
    const char *e = getenv("LATBENCH_TEST_PLANNED");
    size_t l = strlen(s);
    for (const char *p = e; p && *p;) {
        const char *c = strchr(p, ',');
        size_t n = c ? (size_t)(c - p) : strlen(p);
        if (n == l && !strncmp(p, s, l))
            return 1;
        p = c ? c + 1 : NULL;
    }
    return 0;
}

static int known_method(const char *s)
{
    return lat_find_method(s) || in_list(k_planned, s) || test_planned(s);
}

/* Does a comma-separated header line name this column? */
static int header_has(const char *hdr, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = hdr; *p;) {
        const char *e = p + strcspn(p, ",\n");
        if ((size_t)(e - p) == n && !strncmp(p, name, n))
            return 1;
        p = *e ? e + 1 : e;
    }
    return 0;
}

static int field_ok(int table, const char *name)
{
    const char *h = table_header(table);
    return !h || header_has(h, name) || !strcmp(name, "D") || is_knob(name);
}

static int parse_num(const char *s, double *v)
{
    if (!s || !*s)
        return -1;
    char *end;
    errno = 0;
    double d = strtod(s, &end);
    if (*end || errno || !isfinite(d))
        return -1;
    *v = d;
    return 0;
}

/* ---- AST ----------------------------------------------------------------- */
enum { N_NUM, N_FIELD, N_NEG, N_BIN, N_FN, N_SEL, N_CALL, N_CMP, N_IN, N_AND, N_NA };
enum { OP_LE = 256, OP_GE, OP_EQ, OP_NE, OP_DEF, OP_LT = '<', OP_GT = '>' };
enum { F_ABS, F_LOG, F_LOG2, F_EXP, F_SQRT, F_FLOOR, /* math */
       F_VALUE, F_MAX, F_MIN, F_MEAN, F_SUM, F_COUNT, F_SLOPE, F_MINSTEP, F_AT, F_INTEGRAL, F_CROSS };
static const char *const k_fn[] = {"abs",   "log", "log2", "exp", "sqrt",  "floor",   "value",   "max",      "min",
                                   "mean",  "sum", "count", "slope", "min_step", "at", "integral", "crossover", NULL};

typedef struct pfilt {
    const char *field; /* canonical for the table: D → K resolved at evaluation */
    int op;            /* '=', OP_NE, '<', OP_LE, '>', OP_GE */
    const char **alt;
    int nalt;
} pfilt;

typedef struct psel {
    int table;
    const char *text; /* as written, for messages */
    pfilt *f;
    int nf;
} psel;

typedef struct node {
    int kind, op; /* N_BIN: + - * / ^; N_FN/N_CALL: F_*; N_CMP: relop */
    double num;
    const char *name;    /* N_FIELD: field; N_NA: reason; N_CALL: X column */
    const char *text;    /* a row expression as written */
    struct node *a, *b, *c, *y; /* operands; N_CALL: y = row expression; a, b = extra exprs */
    struct node **part;  /* N_AND */
    int npart;
    psel *s1, *s2;       /* N_SEL / N_CALL selectors */
    const char **by;
    int nby;
    int has_sel, boolean, vector_arg; /* vector_arg: max(x) over a vector */
    long cost;
} node;

/* ---- lexer ---------------------------------------------------------------- */
enum { T_END, T_NUM, T_ID, T_STR, T_OP };

typedef struct parser {
    const char *s;
    size_t n, i, tok_at;
    int tok, op;
    double num;
    char text[MAX_STRING + 1];
    arena *a;
    char err[300];
    int depth;
    const psel *rowsel; /* row context: fields of this selector's table */
    const char *def_name[MAX_DEFS];
    node *def_node[MAX_DEFS];
    int ndef;
} parser;

static void perr(parser *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void perr(parser *p, const char *fmt, ...)
{
    if (p->err[0])
        return;
    char m[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(m, sizeof m, fmt, ap);
    va_end(ap);
    snprintf(p->err, sizeof p->err, "predicate, column %zu: %s", p->tok_at + 1, m);
}

static void next(parser *p)
{
    while (p->i < p->n && isspace((unsigned char)p->s[p->i]))
        p->i++;
    p->tok_at = p->i;
    p->text[0] = 0;
    if (p->i >= p->n) {
        p->tok = T_END;
        return;
    }
    const char *s = p->s + p->i;
    size_t left = p->n - p->i;
    char c = s[0];
    if (isalpha((unsigned char)c) || c == '_') {
        size_t k = 0;
        while (k < left && (isalnum((unsigned char)s[k]) || s[k] == '_'))
            k++;
        if (k > MAX_IDENT) {
            perr(p, "name longer than %d characters", MAX_IDENT);
            k = MAX_IDENT;
        }
        memcpy(p->text, s, k);
        p->text[k] = 0;
        p->i += k;
        p->tok = T_ID;
        return;
    }
    if (isdigit((unsigned char)c) || (c == '.' && left > 1 && isdigit((unsigned char)s[1]))) {
        size_t k = 0;
        while (k < left && k < 60 && (isdigit((unsigned char)s[k]) || s[k] == '.'))
            k++;
        if (k < left && k < 60 && (s[k] == 'e' || s[k] == 'E')) {
            size_t j = k + 1;
            if (j < left && (s[j] == '+' || s[j] == '-'))
                j++;
            if (j < left && isdigit((unsigned char)s[j])) {
                while (j < left && j < 60 && isdigit((unsigned char)s[j]))
                    j++;
                k = j;
            }
        }
        memcpy(p->text, s, k);
        p->text[k] = 0;
        p->i += k;
        p->tok = T_NUM;
        if (parse_num(p->text, &p->num))
            perr(p, "bad number '%s'", p->text);
        return;
    }
    if (c == '"') {
        size_t k = 1;
        while (k < left && s[k] != '"' && k <= MAX_STRING)
            k++;
        if (k >= left || s[k] != '"') {
            perr(p, "unterminated string (at most %d characters)", MAX_STRING);
            p->tok = T_END;
            p->i = p->n;
            return;
        }
        memcpy(p->text, s + 1, k - 1);
        p->text[k - 1] = 0;
        p->i += k + 1;
        p->tok = T_STR;
        return;
    }
    static const struct { const char *t; int op; } two[] = {
        {"<=", OP_LE}, {">=", OP_GE}, {"==", OP_EQ}, {"!=", OP_NE}, {":=", OP_DEF}};
    for (size_t k = 0; k < sizeof two / sizeof two[0]; k++)
        if (left >= 2 && s[0] == two[k].t[0] && s[1] == two[k].t[1]) {
            p->tok = T_OP;
            p->op = two[k].op;
            snprintf(p->text, sizeof p->text, "%s", two[k].t);
            p->i += 2;
            return;
        }
    if (strchr("()[],{};+-*/^<>", c)) {
        p->tok = T_OP;
        p->op = c;
        p->text[0] = c;
        p->text[1] = 0;
        p->i++;
        return;
    }
    perr(p, "unexpected character '%s%c'", isprint((unsigned char)c) ? "" : "\\", isprint((unsigned char)c) ? c : '?');
    p->tok = T_END;
    p->i = p->n;
}

static int is_op(const parser *p, int op)
{
    return p->tok == T_OP && p->op == op;
}

static int is_word(const parser *p, const char *w)
{
    return p->tok == T_ID && !strcmp(p->text, w);
}

static int expect(parser *p, int op, const char *what)
{
    if (!is_op(p, op)) {
        perr(p, "expected %s, found %s", what, p->tok == T_END ? "the end" : p->text);
        return -1;
    }
    next(p);
    return 0;
}

static const char *tok_desc(const parser *p)
{
    return p->tok == T_END ? "the end" : p->text;
}

/* ---- node constructors ---------------------------------------------------- */
static node *mk(parser *p, int kind)
{
    node *n = amalloc(p->a, sizeof *n);
    n->kind = kind;
    n->cost = 1;
    return n;
}

static void add_cost(parser *p, node *n, const node *c)
{
    if (c) {
        n->cost += c->cost;
        n->has_sel |= c->has_sel;
    }
    if (n->cost > MAX_COST)
        perr(p, "expression too large (more than %d nodes once definitions are expanded)", MAX_COST);
}

static int find_fn(const char *s)
{
    for (int i = 0; k_fn[i]; i++)
        if (!strcmp(k_fn[i], s))
            return i;
    return -1;
}

static int find_table(const char *s)
{
    for (int i = 0; i < TB_N; i++)
        if (!strcmp(k_tables[i], s))
            return i;
    return -1;
}

static node *find_def(const parser *p, const char *s)
{
    for (int i = 0; i < p->ndef; i++)
        if (!strcmp(p->def_name[i], s))
            return p->def_node[i];
    return NULL;
}

static int reserved(const char *s)
{
    return find_fn(s) >= 0 || find_table(s) >= 0 || !strcmp(s, "and") || !strcmp(s, "in") || !strcmp(s, "na");
}

/* ---- selectors: table{field op value|value, …} ------------------------------ */
static void skip_sp(parser *p)
{
    while (p->i < p->n && (p->s[p->i] == ' ' || p->s[p->i] == '\t'))
        p->i++;
}

static int value_char(char c)
{
    return isalnum((unsigned char)c) || strchr("_.:*+-|", c);
}

static int parse_filter_value(parser *p, psel *sel, pfilt *f)
{
    size_t v0 = p->i;
    while (p->i < p->n && value_char(p->s[p->i]))
        p->i++;
    size_t len = p->i - v0;
    if (!len) {
        p->tok_at = p->i;
        perr(p, "%s: missing value after '%s'", sel->text ? sel->text : k_tables[sel->table], f->field);
        return -1;
    }
    const char *v = astrndup(p->a, p->s + v0, len);
    f->alt = amalloc(p->a, sizeof(char *) * MAX_ALTS);
    for (const char *q = v;;) {
        const char *e = strchr(q, '|');
        size_t l = e ? (size_t)(e - q) : strlen(q);
        if (!l || f->nalt == MAX_ALTS) {
            perr(p, "filter on '%s': %s", f->field, l ? "too many alternatives" : "empty alternative in a|b");
            return -1;
        }
        const char *alt = astrndup(p->a, q, l);
        const char *star = strchr(alt, '*');
        if (star && (star[1] || f->op == '<' || f->op == '>' || f->op == OP_LE || f->op == OP_GE)) {
            perr(p, "filter on '%s': '*' only at the end of a value, with = or !=", f->field);
            return -1;
        }
        f->alt[f->nalt++] = alt;
        if (!e)
            break;
        q = e + 1;
    }
    int ordered = f->op != '=' && f->op != OP_NE;
    double d;
    if (ordered && (f->nalt != 1 || parse_num(f->alt[0], &d))) {
        perr(p, "filter on '%s': %s needs one number", f->field, ordered ? "an order comparison" : "");
        return -1;
    }
    for (int k = 0; k < f->nalt; k++) {
        int ext = !strcmp(f->alt[k], "max") || !strcmp(f->alt[k], "min");
        if (ext && (f->op != '=' || f->nalt != 1)) {
            perr(p, "filter on '%s': max/min only as the single value of '='", f->field);
            return -1;
        }
        if (!strcmp(f->field, "method") && !ext && !known_method(f->alt[k])) {
            perr(p, "unknown method '%s' (neither registered nor planned)", f->alt[k]);
            return -1;
        }
    }
    return 0;
}

static int parse_filter_op(parser *p, pfilt *f)
{
    static const struct { const char *t; int op; } ops[] = {
        {"!=", OP_NE}, {"<=", OP_LE}, {">=", OP_GE}, {"=", '='}, {"<", '<'}, {">", '>'}};
    for (size_t k = 0; k < sizeof ops / sizeof ops[0]; k++) {
        size_t l = strlen(ops[k].t);
        if (p->n - p->i >= l && !strncmp(p->s + p->i, ops[k].t, l)) {
            f->op = ops[k].op;
            p->i += l;
            return 0;
        }
    }
    p->tok_at = p->i;
    perr(p, "expected = != < <= > >= after '%s'", f->field);
    return -1;
}

static int parse_filter(parser *p, psel *sel)
{
    if (sel->nf == MAX_FILTERS) {
        perr(p, "more than %d filters", MAX_FILTERS);
        return -1;
    }
    pfilt *f = &sel->f[sel->nf++];
    size_t f0 = p->i;
    while (p->i < p->n && (isalnum((unsigned char)p->s[p->i]) || p->s[p->i] == '_'))
        p->i++;
    p->tok_at = f0;
    if (p->i == f0 || p->i - f0 > MAX_IDENT || !(isalpha((unsigned char)p->s[f0]) || p->s[f0] == '_')) {
        perr(p, "expected a field name in %s{…}", k_tables[sel->table]);
        return -1;
    }
    f->field = astrndup(p->a, p->s + f0, p->i - f0);
    if (!field_ok(sel->table, f->field)) {
        perr(p, "unknown field '%s' of %s", f->field, k_tables[sel->table]);
        return -1;
    }
    skip_sp(p);
    if (parse_filter_op(p, f))
        return -1;
    skip_sp(p);
    return parse_filter_value(p, sel, f);
}

/* Called with the table name consumed and p->i just past '{' (raw scanning). */
static node *parse_selector(parser *p, int table, size_t start)
{
    psel *sel = amalloc(p->a, sizeof *sel);
    sel->table = table;
    sel->f = amalloc(p->a, sizeof(pfilt) * MAX_FILTERS);
    for (;;) {
        skip_sp(p);
        if (p->i < p->n && p->s[p->i] == '}' && sel->nf == 0)
            break;
        if (parse_filter(p, sel))
            return NULL;
        skip_sp(p);
        if (p->i < p->n && p->s[p->i] == ',') {
            p->i++;
            continue;
        }
        if (p->i < p->n && p->s[p->i] == '}')
            break;
        p->tok_at = p->i;
        perr(p, "expected ',' or '}' in %s{…}", k_tables[table]);
        return NULL;
    }
    p->i++; /* '}' */
    sel->text = astrndup(p->a, p->s + start, p->i - start);
    node *n = mk(p, N_SEL);
    n->s1 = sel;
    n->has_sel = 1;
    next(p);
    return n;
}

/* ---- expressions ------------------------------------------------------------ */
static node *parse_expr(parser *p);
static node *parse_bool(parser *p);
static node *finish_cmp(parser *p, node *lhs);

static int numeric(parser *p, const node *n)
{
    if (!n)
        return 0;
    if (n->boolean) {
        perr(p, "a comparison cannot be used as a number");
        return 0;
    }
    if (n->kind == N_SEL) {
        perr(p, "a selector (%s) is rows, not a number: use value(), max(), slope(), …", n->s1->text);
        return 0;
    }
    return 1;
}

static node *bin(parser *p, int op, node *a, node *b)
{
    if (!numeric(p, a) || !numeric(p, b))
        return NULL;
    node *n = mk(p, N_BIN);
    n->op = op;
    n->a = a;
    n->b = b;
    add_cost(p, n, a);
    add_cost(p, n, b);
    return n;
}

/* A selector argument: table{…} or a name defined as one. */
static psel *parse_sel_arg(parser *p)
{
    if (p->tok == T_ID) {
        int t = find_table(p->text);
        if (t >= 0 && p->i < p->n && p->s[p->i] == '{') {
            size_t start = p->tok_at;
            p->i++;
            node *n = parse_selector(p, t, start);
            return n ? n->s1 : NULL;
        }
        node *d = find_def(p, p->text);
        if (d && d->kind == N_SEL) {
            next(p);
            return d->s1;
        }
    }
    perr(p, "expected rows (table{…}), found %s", tok_desc(p));
    return NULL;
}

static const char *parse_col(parser *p, const psel *s)
{
    if (p->tok != T_ID) {
        perr(p, "expected a column name, found %s", tok_desc(p));
        return NULL;
    }
    if (!field_ok(s->table, p->text)) {
        perr(p, "unknown field '%s' of %s", p->text, k_tables[s->table]);
        return NULL;
    }
    const char *c = astrdup(p->a, p->text);
    next(p);
    return c;
}

static node *parse_rowexpr(parser *p, const psel *s)
{
    const psel *saved = p->rowsel;
    size_t start = p->tok_at;
    p->rowsel = s;
    node *e = parse_expr(p);
    p->rowsel = saved;
    if (!e || !numeric(p, e))
        return NULL;
    size_t end = p->tok_at;
    while (end > start && isspace((unsigned char)p->s[end - 1]))
        end--;
    if (e->kind == N_FIELD || e->kind == N_NUM) { /* shared leaf: give it its own copy */
        node *c = mk(p, e->kind);
        *c = *e;
        e = c;
    }
    e->text = astrndup(p->a, p->s + start, end - start);
    return e;
}

static int parse_by(parser *p, node *n, const psel *s)
{
    n->by = amalloc(p->a, sizeof(char *) * MAX_BY);
    while (is_op(p, ',')) {
        next(p);
        if (n->nby == MAX_BY) {
            perr(p, "more than %d grouping columns", MAX_BY);
            return -1;
        }
        const char *c = parse_col(p, s);
        if (!c)
            return -1;
        n->by[n->nby++] = c;
    }
    return 0;
}

static node *comma_expr(parser *p)
{
    if (expect(p, ',', "','"))
        return NULL;
    node *e = parse_expr(p);
    return numeric(p, e) ? e : NULL;
}

/* Is the current token the start of a selector argument? */
static int starts_selector(const parser *p)
{
    if (p->tok != T_ID)
        return 0;
    if (find_table(p->text) >= 0 && p->i < p->n && p->s[p->i] == '{')
        return 1;
    const node *d = find_def(p, p->text);
    return d && d->kind == N_SEL;
}

/* max(x) / min(x) over a vector, or max(a, b) / min(a, b) element-wise (also
 * inside row expressions); called after '('. */
static node *parse_minmax2(parser *p, int fn)
{
    node *a = parse_expr(p);
    if (!numeric(p, a))
        return NULL;
    node *n;
    if (is_op(p, ',')) {
        next(p);
        n = bin(p, fn == F_MAX ? 'M' : 'm', a, parse_expr(p));
    } else if (p->rowsel) {
        perr(p, "%s() inside a row expression takes two numbers", k_fn[fn]);
        return NULL;
    } else {
        n = mk(p, N_CALL);
        n->op = fn;
        n->vector_arg = 1;
        n->a = a;
        add_cost(p, n, a);
    }
    if (!n || expect(p, ')', "')'"))
        return NULL;
    return n;
}

/* The arguments of a data function, after '('. */
static int parse_data_args(parser *p, node *n, int fn)
{
    if (fn == F_MAX || fn == F_MIN || fn == F_MEAN || fn == F_SUM) {
        if (!starts_selector(p)) {
            n->vector_arg = 1;
            n->a = parse_expr(p);
            return numeric(p, n->a) ? 0 : -1;
        }
    }
    if (!(n->s1 = parse_sel_arg(p)))
        return -1;
    if (fn == F_COUNT)
        return parse_by(p, n, n->s1);
    if (fn == F_CROSS) {
        if (expect(p, ',', "','") || !(n->s2 = parse_sel_arg(p)))
            return -1;
        if (n->s1->table != n->s2->table) {
            perr(p, "crossover compares rows of one table");
            return -1;
        }
    }
    if (expect(p, ',', "','"))
        return -1;
    int has_x = fn == F_SLOPE || fn == F_MINSTEP || fn == F_AT || fn == F_INTEGRAL || fn == F_CROSS;
    if (has_x && (!(n->name = parse_col(p, n->s1)) || expect(p, ',', "','")))
        return -1;
    if (!(n->y = parse_rowexpr(p, n->s1)))
        return -1;
    if (fn == F_AT || fn == F_INTEGRAL)
        if (!(n->a = comma_expr(p)))
            return -1;
    if (fn == F_INTEGRAL && !(n->b = comma_expr(p)))
        return -1;
    return fn == F_CROSS ? 0 : parse_by(p, n, n->s1);
}

static node *parse_call(parser *p, int fn)
{
    next(p); /* name */
    if (expect(p, '(', "'(' after a function name"))
        return NULL;
    if ((fn == F_MAX || fn == F_MIN) && (p->rowsel || !starts_selector(p)))
        return parse_minmax2(p, fn);
    node *n = mk(p, fn <= F_FLOOR ? N_FN : N_CALL);
    n->op = fn;
    if (fn <= F_FLOOR) {
        n->a = parse_expr(p);
        if (!numeric(p, n->a))
            return NULL;
    } else if (p->rowsel) {
        perr(p, "%s() cannot be used inside a row expression", k_fn[fn]);
        return NULL;
    } else if (parse_data_args(p, n, fn)) {
        return NULL;
    }
    if (expect(p, ')', "')'"))
        return NULL;
    add_cost(p, n, n->a);
    add_cost(p, n, n->b);
    add_cost(p, n, n->y);
    if (n->s1) {
        n->has_sel = 1;
        n->cost += 200; /* a pass over a table: bounds the work of one predicate */
        add_cost(p, n, NULL);
    }
    return n;
}

static node *parse_ident(parser *p)
{
    int fn = find_fn(p->text);
    if (fn >= 0 && p->i < p->n && p->s[p->i] == '(')
        return parse_call(p, fn);
    if (p->rowsel) {
        if (!field_ok(p->rowsel->table, p->text)) {
            perr(p, "unknown field '%s' of %s", p->text, k_tables[p->rowsel->table]);
            return NULL;
        }
        node *n = mk(p, N_FIELD);
        n->name = astrdup(p->a, p->text);
        next(p);
        return n;
    }
    node *d = find_def(p, p->text);
    if (d) {
        next(p);
        return d;
    }
    int t = find_table(p->text);
    if (t >= 0 && p->i < p->n && p->s[p->i] == '{') {
        size_t start = p->tok_at;
        p->i++;
        return parse_selector(p, t, start);
    }
    if (!strcmp(p->text, "na"))
        perr(p, "na(\"reason\") must be the whole predicate");
    else
        perr(p, "unknown name '%s'", p->text);
    return NULL;
}

/* '(' expr ')' or '(' bool ')' */
static node *parse_paren(parser *p)
{
    next(p);
    node *e = parse_expr(p);
    if (!e)
        return NULL;
    int cmp = p->tok == T_OP && (p->op == '<' || p->op == '>' || p->op == OP_LE || p->op == OP_GE ||
                                 p->op == OP_EQ || p->op == OP_NE);
    if (cmp || is_word(p, "in") || is_word(p, "and")) {
        if (p->rowsel) {
            perr(p, "comparisons are not allowed inside a row expression");
            return NULL;
        }
        e = finish_cmp(p, e); /* a parenthesised comparison */
        while (e && is_word(p, "and")) {
            next(p);
            node *r = parse_bool(p);
            if (!r)
                return NULL;
            node *n = mk(p, N_AND);
            n->boolean = 1;
            n->part = amalloc(p->a, sizeof(node *) * 2);
            n->part[0] = e;
            n->part[1] = r;
            n->npart = 2;
            add_cost(p, n, e);
            add_cost(p, n, r);
            e = n;
        }
    }
    if (!e || expect(p, ')', "')'"))
        return NULL;
    return e;
}

static node *parse_primary(parser *p)
{
    if (++p->depth > MAX_DEPTH) {
        perr(p, "expression nested more than %d deep", MAX_DEPTH);
        return NULL;
    }
    node *n = NULL;
    if (p->tok == T_NUM) {
        n = mk(p, N_NUM);
        n->num = p->num;
        next(p);
    } else if (is_op(p, '(')) {
        n = parse_paren(p);
    } else if (p->tok == T_ID && !is_word(p, "and") && !is_word(p, "in")) {
        n = parse_ident(p);
    } else {
        perr(p, "expected a number, a name or '(', found %s", tok_desc(p));
    }
    p->depth--;
    return n;
}

static node *parse_unary(parser *p)
{
    if (is_op(p, '-')) {
        next(p);
        if (++p->depth > MAX_DEPTH) {
            perr(p, "expression nested more than %d deep", MAX_DEPTH);
            return NULL;
        }
        node *a = parse_unary(p);
        p->depth--;
        if (!numeric(p, a))
            return NULL;
        node *n = mk(p, N_NEG);
        n->a = a;
        add_cost(p, n, a);
        return n;
    }
    node *b = parse_primary(p);
    if (b && is_op(p, '^')) {
        next(p);
        if (++p->depth > MAX_DEPTH) {
            perr(p, "expression nested more than %d deep", MAX_DEPTH);
            return NULL;
        }
        node *e = parse_unary(p);
        p->depth--;
        return bin(p, '^', b, e);
    }
    return b;
}

static node *parse_term(parser *p)
{
    node *a = parse_unary(p);
    while (a && (is_op(p, '*') || is_op(p, '/'))) {
        int op = p->op;
        next(p);
        a = bin(p, op, a, parse_unary(p));
    }
    return a;
}

static node *parse_expr(parser *p)
{
    node *a = parse_term(p);
    while (a && (is_op(p, '+') || is_op(p, '-'))) {
        int op = p->op;
        next(p);
        a = bin(p, op, a, parse_term(p));
    }
    return a;
}

static node *finish_cmp(parser *p, node *lhs)
{
    if (is_word(p, "in")) {
        next(p);
        node *n = mk(p, N_IN);
        n->boolean = 1;
        if (!numeric(p, lhs) || expect(p, '[', "'[' after in"))
            return NULL;
        n->a = lhs;
        n->b = parse_expr(p);
        if (!numeric(p, n->b) || !(n->c = comma_expr(p)) || expect(p, ']', "']'"))
            return NULL;
        add_cost(p, n, n->a);
        add_cost(p, n, n->b);
        add_cost(p, n, n->c);
        return n;
    }
    int cmp = p->tok == T_OP && (p->op == '<' || p->op == '>' || p->op == OP_LE || p->op == OP_GE ||
                                 p->op == OP_EQ || p->op == OP_NE);
    if (!cmp) {
        if (lhs->boolean)
            return lhs;
        perr(p, "expected a comparison (<=, >=, <, >, ==, != or in [a, b]), found %s", tok_desc(p));
        return NULL;
    }
    if (!numeric(p, lhs))
        return NULL;
    node *n = mk(p, N_CMP);
    n->boolean = 1;
    n->op = p->op;
    next(p);
    n->a = lhs;
    n->b = parse_expr(p);
    if (!numeric(p, n->b))
        return NULL;
    add_cost(p, n, n->a);
    add_cost(p, n, n->b);
    return n;
}

static node *parse_cmp(parser *p)
{
    node *e = parse_expr(p);
    return e ? finish_cmp(p, e) : NULL;
}

static node *parse_bool(parser *p)
{
    node *first = parse_cmp(p);
    if (!first || !is_word(p, "and"))
        return first;
    node *n = mk(p, N_AND);
    n->boolean = 1;
    int cap = 8;
    n->part = amalloc(p->a, sizeof(node *) * (size_t)cap);
    n->part[n->npart++] = first;
    add_cost(p, n, first);
    while (is_word(p, "and")) {
        next(p);
        node *r = parse_cmp(p);
        if (!r)
            return NULL;
        if (n->npart == cap) {
            node **np = amalloc(p->a, sizeof(node *) * (size_t)(cap *= 2));
            memcpy(np, n->part, sizeof(node *) * (size_t)n->npart);
            n->part = np;
        }
        n->part[n->npart++] = r;
        add_cost(p, n, r);
        if (p->err[0])
            return NULL;
    }
    return n;
}

static int parse_defs(parser *p)
{
    while (p->tok == T_ID && !reserved(p->text)) {
        /* look ahead for ':=' */
        size_t j = p->i;
        while (j < p->n && isspace((unsigned char)p->s[j]))
            j++;
        if (!(j + 1 < p->n && p->s[j] == ':' && p->s[j + 1] == '='))
            return 0;
        if (p->ndef == MAX_DEFS) {
            perr(p, "more than %d definitions", MAX_DEFS);
            return -1;
        }
        if (find_def(p, p->text)) {
            perr(p, "'%s' is defined twice", p->text);
            return -1;
        }
        const char *name = astrdup(p->a, p->text);
        next(p);
        next(p); /* := */
        node *e = parse_expr(p);
        if (!e || (e->kind != N_SEL && !numeric(p, e)) || expect(p, ';', "';' after a definition"))
            return -1;
        p->def_name[p->ndef] = name;
        p->def_node[p->ndef++] = e;
    }
    if (p->tok == T_ID && reserved(p->text) && p->i < p->n) {
        size_t j = p->i;
        while (j < p->n && isspace((unsigned char)p->s[j]))
            j++;
        if (j + 1 < p->n && p->s[j] == ':' && p->s[j + 1] == '=') {
            perr(p, "'%s' is a reserved name", p->text);
            return -1;
        }
    }
    return 0;
}

typedef struct pred {
    node *root;
    const char **def_name;
    node **def_node;
    int ndef;
} pred;

/* Parses one predicate; 0, or -1 with err filled. */
static int parse_predicate(arena *a, const char *text, pred *out, char *err, size_t errlen)
{
    parser p;
    memset(&p, 0, sizeof p);
    p.s = text;
    p.n = strlen(text);
    p.a = a;
    next(&p);
    memset(out, 0, sizeof *out);
    if (parse_defs(&p) == 0 && !p.err[0]) {
        if (is_word(&p, "na") && p.i < p.n && p.s[p.i] == '(') {
            next(&p);
            next(&p);
            if (p.tok != T_STR)
                perr(&p, "na() takes a quoted reason");
            else if (!p.text[0])
                perr(&p, "na() needs a non-empty reason");
            node *n = mk(&p, N_NA);
            n->name = astrdup(a, p.text);
            n->boolean = 1;
            next(&p);
            if (!expect(&p, ')', "')'"))
                out->root = n;
            if (out->root && p.tok != T_END)
                perr(&p, "na(\"reason\") must be the whole predicate");
        } else {
            out->root = parse_bool(&p);
            if (out->root && !out->root->boolean)
                perr(&p, "the predicate must be a comparison (e.g. x <= 1) or na(\"reason\")");
        }
        if (out->root && p.tok != T_END)
            perr(&p, "unexpected %s after the predicate", tok_desc(&p));
    }
    if (p.err[0] || !out->root) {
        if (!p.err[0])
            perr(&p, "syntax error");
        snprintf(err, errlen, "%s", p.err);
        return -1;
    }
    if (p.ndef) {
        out->def_name = amalloc(a, sizeof(char *) * (size_t)p.ndef);
        out->def_node = amalloc(a, sizeof(node *) * (size_t)p.ndef);
        memcpy(out->def_name, p.def_name, sizeof(char *) * (size_t)p.ndef);
        memcpy(out->def_node, p.def_node, sizeof(node *) * (size_t)p.ndef);
        out->ndef = p.ndef;
    }
    return 0;
}

/* ---- the TSV ----------------------------------------------------------------- */
enum { C_ID, C_METHOD, C_SOURCE, C_CLAIM, C_REPORTED, C_SETTING, C_PREDICATE, C_PROVENANCE, C_NOTE, C_N };
static const char *const k_cols[C_N] = {"id",      "method",    "source",     "claim", "reported",
                                        "setting", "predicate", "provenance", "note"};

typedef struct claim {
    int line;
    const char *f[C_N];
    const char **methods; /* the method column split; n = 0 for "-" */
    int nmethods;
    pred p;
} claim;

struct lat_claims {
    arena a;
    claim *c;
    int n, cap;
};

const char *lat_verdict_name(lat_verdict v)
{
    switch (v) {
    case LAT_CLAIM_HOLDS: return "holds";
    case LAT_CLAIM_FAILS: return "does not hold";
    case LAT_CLAIM_NA: return "not measurable here";
    case LAT_CLAIM_NYI: return "method not yet implemented";
    }
    return "?";
}

int lat_claims_count(const lat_claims *c)
{
    return c ? c->n : 0;
}

void lat_claims_free(lat_claims *c)
{
    if (!c)
        return;
    afree(&c->a);
    free(c->c);
    free(c);
}

typedef struct tsv_ctx {
    const char *name;
    FILE *err;
    int nerr;
    int col_of[C_N]; /* header position of each known column */
    int ncols;
} tsv_ctx;

static void tsv_err(tsv_ctx *t, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void tsv_err(tsv_ctx *t, int line, const char *fmt, ...)
{
    t->nerr++;
    if (!t->err)
        return;
    va_list ap;
    va_start(ap, fmt);
    fprintf(t->err, "%s: %s:%d: ", lat_prog, t->name, line);
    vfprintf(t->err, fmt, ap);
    fputc('\n', t->err);
    va_end(ap);
}

/* Splits line on tabs into at most max fields; returns the count (> max: too many). */
static int split_tabs(arena *a, const char *line, const char **f, int max)
{
    int n = 0;
    for (const char *p = line;;) {
        const char *e = strchr(p, '\t');
        size_t l = e ? (size_t)(e - p) : strlen(p);
        if (n < max)
            f[n] = astrndup(a, p, l);
        n++;
        if (!e)
            break;
        p = e + 1;
    }
    return n;
}

static int parse_header(tsv_ctx *t, arena *a, const char *line, int lineno)
{
    const char *h[64];
    int n = split_tabs(a, line, h, 64);
    if (n > 64) {
        tsv_err(t, lineno, "header has %d columns (at most 64)", n);
        return -1;
    }
    for (int c = 0; c < C_N; c++)
        t->col_of[c] = -1;
    for (int i = 0; i < n; i++) {
        int c = 0;
        while (c < C_N && strcmp(k_cols[c], h[i]))
            c++;
        if (c == C_N) {
            tsv_err(t, lineno, "unknown column '%.60s' in the header (columns: id method source claim reported "
                               "setting predicate provenance note)", h[i]);
            return -1;
        }
        if (t->col_of[c] >= 0) {
            tsv_err(t, lineno, "column '%s' twice in the header", k_cols[c]);
            return -1;
        }
        t->col_of[c] = i;
    }
    for (int c = 0; c < C_N; c++)
        if (t->col_of[c] < 0) {
            tsv_err(t, lineno, "the header lacks column '%s'", k_cols[c]);
            return -1;
        }
    t->ncols = n;
    return 0;
}

static int valid_id(const char *s)
{
    if (!*s || strlen(s) > 32)
        return 0;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && !strchr("_.-", *s))
            return 0;
    return 1;
}

static int parse_methods(tsv_ctx *t, arena *a, claim *c)
{
    const char *m = c->f[C_METHOD];
    if (!strcmp(m, "-"))
        return 0;
    c->methods = amalloc(a, sizeof(char *) * MAX_NAMES);
    for (const char *p = m;;) {
        size_t l = strcspn(p, "|,");
        const char *name = astrndup(a, p, l);
        if (!known_method(name)) {
            tsv_err(t, c->line, "method column: unknown method '%.40s' (neither registered nor planned; '-' for none)",
                    name);
            return -1;
        }
        if (c->nmethods == MAX_NAMES) {
            tsv_err(t, c->line, "method column: more than %d methods", MAX_NAMES);
            return -1;
        }
        c->methods[c->nmethods++] = name;
        if (!p[l])
            break;
        p += l + 1;
    }
    return 0;
}

static int has_ctrl(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20)
            return 1;
    return 0;
}

static void parse_row(tsv_ctx *t, lat_claims *cs, const char *line, int lineno)
{
    const char *f[64];
    int n = split_tabs(&cs->a, line, f, 64);
    if (n != t->ncols) {
        tsv_err(t, lineno, "expected %d tab-separated fields, found %d", t->ncols, n);
        return;
    }
    claim c;
    memset(&c, 0, sizeof c);
    c.line = lineno;
    for (int k = 0; k < C_N; k++) {
        c.f[k] = f[t->col_of[k]];
        if (has_ctrl(c.f[k])) {
            tsv_err(t, lineno, "control character in column '%s'", k_cols[k]);
            return;
        }
    }
    if (!valid_id(c.f[C_ID])) {
        tsv_err(t, lineno, "bad id '%.40s' (letters, digits, _ . -; at most 32)", c.f[C_ID]);
        return;
    }
    for (int i = 0; i < cs->n; i++)
        if (!strcmp(cs->c[i].f[C_ID], c.f[C_ID])) {
            tsv_err(t, lineno, "id '%s' already used on line %d", c.f[C_ID], cs->c[i].line);
            return;
        }
    if (parse_methods(t, &cs->a, &c))
        return;
    char err[300];
    if (parse_predicate(&cs->a, c.f[C_PREDICATE], &c.p, err, sizeof err)) {
        tsv_err(t, lineno, "%s: %s", c.f[C_ID], err);
        return;
    }
    if (cs->n == cs->cap) {
        claim *nc = realloc(cs->c, sizeof(claim) * (size_t)(cs->cap = cs->cap ? 2 * cs->cap : 64));
        if (!nc)
            lat_die(1, "claims: out of memory");
        cs->c = nc;
    }
    cs->c[cs->n++] = c;
}

int lat_claims_parse(const char *text, size_t len, const char *name, lat_claims **out, FILE *err)
{
    tsv_ctx t;
    memset(&t, 0, sizeof t);
    t.name = name ? name : "claims.tsv";
    t.err = err;
    lat_claims *cs = calloc(1, sizeof *cs);
    if (!cs)
        lat_die(1, "claims: out of memory");
    int lineno = 0, have_header = 0;
    for (size_t i = 0; i < len;) {
        size_t e = i;
        while (e < len && text[e] != '\n')
            e++;
        lineno++;
        size_t l = e - i;
        if (l && text[i + l - 1] == '\r')
            l--;
        const char *nul = memchr(text + i, 0, l);
        char *line = astrndup(&cs->a, text + i, l);
        i = e + 1;
        if (nul) {
            tsv_err(&t, lineno, "NUL byte in the line");
            continue;
        }
        if (!line[0] || line[0] == '#')
            continue;
        if (!have_header) {
            have_header = 1;
            if (parse_header(&t, &cs->a, line, lineno))
                break;
            continue;
        }
        parse_row(&t, cs, line, lineno);
    }
    if (!have_header)
        tsv_err(&t, lineno ? lineno : 1, "no header line (id method source claim reported setting predicate "
                                         "provenance note)");
    if (t.nerr) {
        lat_claims_free(cs);
        cs = NULL;
    }
    *out = cs;
    return t.nerr;
}

int lat_claims_load(const char *path, lat_claims **out, FILE *err)
{
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) {
        if (err)
            fprintf(err, "%s: %s: cannot read: %s\n", lat_prog, path, strerror(errno));
        return -1;
    }
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap);
    for (size_t got; buf && (got = fread(buf + len, 1, cap - len, f)) > 0;) {
        len += got;
        if (len == cap) {
            char *nb = realloc(buf, cap *= 2);
            if (!nb)
                free(buf);
            buf = nb;
        }
    }
    int bad = ferror(f);
    fclose(f);
    if (!buf || bad) {
        free(buf);
        if (err)
            fprintf(err, "%s: %s: cannot read\n", lat_prog, path);
        return -1;
    }
    int n = lat_claims_parse(buf, len, path, out, err);
    free(buf);
    return n;
}

/* ---- evaluation: run folder, vectors ------------------------------------------ */
typedef struct rtab {
    int tried, ok;
    lat_table t;
} rtab;

typedef struct run {
    char dir[4096];
    rtab tab[TB_N];
} run;

static void run_init(run *r, const char *dir)
{
    memset(r, 0, sizeof *r);
    snprintf(r->dir, sizeof r->dir, "%s", dir);
}

static void run_free(run *r)
{
    for (int i = 0; i < TB_N; i++)
        if (r->tab[i].ok)
            lat_table_free(&r->tab[i].t);
}

static const lat_table *run_table(run *r, int t)
{
    rtab *x = &r->tab[t];
    if (!x->tried) {
        char path[4200];
        snprintf(path, sizeof path, "%s/%s.csv", r->dir, k_tables[t]);
        x->tried = 1;
        x->ok = lat_table_load(path, &x->t) == 0;
    }
    return x->ok ? &x->t : NULL;
}

typedef struct kvp {
    const char *n, *v;
    int scoped; /* form and knobs: compared only between elements of one method */
} kvp;

typedef struct elem {
    double v;
    const char *method; /* NULL: none or mixed */
    const char *disp;   /* "gla.chunk"; NULL for a constant */
    kvp *k;
    int nk;
    const char *detail;
    int isconst;
} elem;

typedef struct vec {
    elem *e;
    int n;
    int st; /* LAT_CLAIM_HOLDS when usable; NA / NYI with why when empty */
    const char *why;
} vec;

typedef struct ectx {
    arena a;
    run *run;
    const char *seen[MAX_NAMES]; /* methods whose rows were used */
    int nseen;
    long rows, noisy; /* timing rows used, and how many were flagged noisy */
    char *counted[TB_N]; /* rows already in rows/noisy, per table */
    sbuf meas, notes, why;
    char measbuf[2048], notesbuf[768], whybuf[1024];
} ectx;

static void add_why(ectx *x, const char *w)
{
    if (!w || strstr(x->whybuf, w))
        return;
    sb_add(&x->why, "%s%s", x->why.len ? "; " : "", w);
}

static void add_note(ectx *x, const char *w)
{
    if (strstr(x->notesbuf, w))
        return;
    sb_add(&x->notes, "%s%s", x->notes.len ? "; " : "", w);
}

static vec vfail(int st, const char *why)
{
    vec v;
    memset(&v, 0, sizeof v);
    v.st = st;
    v.why = why;
    return v;
}

static vec vscalar(ectx *x, double d)
{
    vec v;
    memset(&v, 0, sizeof v);
    v.e = amalloc(&x->a, sizeof(elem));
    v.n = 1;
    v.e[0].v = d;
    v.e[0].isconst = 1;
    return v;
}

static const char *fmtnum(ectx *x, double v)
{
    if (isnan(v))
        return "n/a";
    if (isinf(v))
        return v > 0 ? "∞" : "−∞";
    if (v == floor(v) && fabs(v) < 1e7)
        return aprintf(&x->a, "%.0f", v);
    return aprintf(&x->a, "%.3g", v);
}

/* ---- fields of a row ----------------------------------------------------------- */
/* Value of knob name in "a=1;b=2" into buf; NULL when absent. */
static const char *knob_value(const char *knobs, const char *name, char *buf, size_t len)
{
    size_t n = strlen(name);
    for (const char *p = knobs; p && *p;) {
        const char *e = p + strcspn(p, ";");
        if ((size_t)(e - p) > n && !strncmp(p, name, n) && p[n] == '=') {
            size_t l = (size_t)(e - p) - n - 1;
            if (l >= len)
                l = len - 1;
            memcpy(buf, p + n + 1, l);
            buf[l] = 0;
            return buf;
        }
        p = *e ? e + 1 : e;
    }
    return NULL;
}

static const char *canon_field(const lat_table *t, const char *name)
{
    return (!strcmp(name, "D") && lat_table_col(t, "D") < 0) ? "K" : name;
}

/* A row's field (column, D → K, or knob); NULL when absent or empty. */
static const char *fget(const lat_table *t, int row, const char *name, char *buf, size_t len)
{
    name = canon_field(t, name);
    int c = lat_table_col(t, name);
    if (c >= 0)
        return t->cell[row][c][0] ? t->cell[row][c] : NULL;
    c = lat_table_col(t, "knobs");
    return c >= 0 ? knob_value(t->cell[row][c], name, buf, len) : NULL;
}

static int field_present(const lat_table *t, const char *name)
{
    return lat_table_col(t, canon_field(t, name)) >= 0 || (is_knob(name) && lat_table_col(t, "knobs") >= 0);
}

static double fnum(const lat_table *t, int row, const char *name)
{
    char buf[64];
    double d;
    const char *s = fget(t, row, name, buf, sizeof buf);
    return (s && !parse_num(s, &d)) ? d : NAN;
}

static int val_eq(const char *a, const char *b)
{
    double x, y;
    if (!parse_num(a, &x) && !parse_num(b, &y))
        return fabs(x - y) <= 1e-9 * fmax(fabs(x), fabs(y));
    return !strcmp(a, b);
}

static double arith(int op, double a, double b)
{
    switch (op) {
    case '+': return a + b;
    case '-': return a - b;
    case '*': return a * b;
    case '/': return b == 0 ? NAN : a / b;
    case '^': return pow(a, b);
    case 'M': return isnan(a) || isnan(b) ? NAN : fmax(a, b);
    case 'm': return isnan(a) || isnan(b) ? NAN : fmin(a, b);
    }
    return NAN;
}

static double math1(int fn, double a)
{
    switch (fn) {
    case F_ABS: return fabs(a);
    case F_LOG: return a > 0 ? log(a) : NAN;
    case F_LOG2: return a > 0 ? log2(a) : NAN;
    case F_EXP: return exp(a);
    case F_SQRT: return a >= 0 ? sqrt(a) : NAN;
    case F_FLOOR: return floor(a);
    }
    return NAN;
}

static double row_eval(const lat_table *t, int row, const node *n)
{
    switch (n->kind) {
    case N_NUM: return n->num;
    case N_FIELD: return fnum(t, row, n->name);
    case N_NEG: return -row_eval(t, row, n->a);
    case N_BIN: return arith(n->op, row_eval(t, row, n->a), row_eval(t, row, n->b));
    case N_FN: return math1(n->op, row_eval(t, row, n->a));
    }
    return NAN;
}

/* ---- selection ------------------------------------------------------------------- */
typedef struct srows {
    int st;
    const char *why;
    const lat_table *t;
    const psel *sel;
    int *row;
    int n;
    const char *pin[MAX_FILTERS]; /* canonical names fixed to one value (or a glob) */
    int npin;
} srows;

static int is_pinned(const srows *s, const char *name)
{
    for (int i = 0; i < s->npin; i++)
        if (!strcmp(s->pin[i], name))
            return 1;
    return 0;
}

static int alt_match(const char *fv, const char *alt, int is_ext, double ext)
{
    double d;
    if (is_ext)
        return !parse_num(fv, &d) && d == ext;
    size_t l = strlen(alt);
    if (l && alt[l - 1] == '*')
        return !strncmp(fv, alt, l - 1);
    return val_eq(fv, alt);
}

static int filter_match(const lat_table *t, int row, const pfilt *f, int is_ext, double ext)
{
    char buf[64];
    const char *fv = fget(t, row, f->field, buf, sizeof buf);
    if (!fv)
        return 0;
    if (f->op == '=' || f->op == OP_NE) {
        int any = 0;
        for (int k = 0; k < f->nalt && !any; k++)
            any = alt_match(fv, f->alt[k], is_ext, ext);
        return f->op == '=' ? any : !any;
    }
    double a, b;
    if (parse_num(fv, &a) || parse_num(f->alt[0], &b))
        return 0;
    return f->op == '<' ? a < b : f->op == '>' ? a > b : f->op == OP_LE ? a <= b : a >= b;
}

/* The extreme (max/min) of a field over the whole table. */
static double extreme(const lat_table *t, const char *field, int want_max)
{
    double best = NAN;
    for (int r = 0; r < t->nrow; r++) {
        double v = fnum(t, r, field);
        if (!isnan(v) && (isnan(best) || (want_max ? v > best : v < best)))
            best = v;
    }
    return best;
}

static void note_seen(ectx *x, const char *m)
{
    if (!m || !*m)
        return;
    for (int i = 0; i < x->nseen; i++)
        if (!strcmp(x->seen[i], m))
            return;
    if (x->nseen < MAX_NAMES)
        x->seen[x->nseen++] = m;
}

/* Unregistered names of a method filter, or NULL when some name is registered. */
static const char *only_unregistered(ectx *x, const psel *sel)
{
    for (int i = 0; i < sel->nf; i++) {
        const pfilt *f = &sel->f[i];
        if (strcmp(f->field, "method") || f->op != '=')
            continue;
        sbuf b = {amalloc(&x->a, 512), 512, 0};
        for (int k = 0; k < f->nalt; k++) {
            if (lat_find_method(f->alt[k]))
                return NULL;
            sb_add(&b, "%s%s", k ? ", " : "", f->alt[k]);
        }
        return b.s;
    }
    return NULL;
}

static int row_passes(const srows *s, int r, const double *ext, const int *is_ext, int status_col)
{
    const lat_table *t = s->t;
    if (status_col >= 0) {
        const char *st = t->cell[r][status_col];
        if (strcmp(st, "ok") && strcmp(st, "noisy"))
            return 0;
    }
    for (int i = 0; i < s->sel->nf; i++)
        if (!filter_match(t, r, &s->sel->f[i], is_ext[i], ext[i]))
            return 0;
    return 1;
}

static srows select_rows(ectx *x, const psel *sel)
{
    srows s;
    memset(&s, 0, sizeof s);
    s.sel = sel;
    const char *nyi = only_unregistered(x, sel);
    if (nyi) {
        s.st = LAT_CLAIM_NYI;
        s.why = aprintf(&x->a, "not yet implemented: %s", nyi);
        return s;
    }
    s.t = run_table(x->run, sel->table);
    if (!s.t) {
        s.st = LAT_CLAIM_NA;
        s.why = aprintf(&x->a, "no %s.csv in the run", k_tables[sel->table]);
        return s;
    }
    double ext[MAX_FILTERS];
    int is_ext[MAX_FILTERS], status_col = lat_table_col(s.t, "status");
    for (int i = 0; i < sel->nf; i++) {
        const pfilt *f = &sel->f[i];
        if (!field_present(s.t, f->field)) {
            s.st = LAT_CLAIM_NA;
            s.why = aprintf(&x->a, "%s.csv has no column '%s'", k_tables[sel->table], f->field);
            return s;
        }
        is_ext[i] = f->nalt == 1 && (!strcmp(f->alt[0], "max") || !strcmp(f->alt[0], "min"));
        ext[i] = is_ext[i] ? extreme(s.t, f->field, f->alt[0][1] == 'a') : 0;
        if (!strcmp(f->field, "status"))
            status_col = -1;
        if (f->op == '=' && f->nalt == 1 && s.npin < MAX_FILTERS)
            s.pin[s.npin++] = canon_field(s.t, f->field);
    }
    s.row = amalloc(&x->a, sizeof(int) * (size_t)(s.t->nrow + 1));
    for (int r = 0; r < s.t->nrow; r++)
        if (row_passes(&s, r, ext, is_ext, status_col)) {
            s.row[s.n++] = r;
            note_seen(x, lat_table_get(s.t, r, "method"));
        }
    if (!s.n) {
        s.st = LAT_CLAIM_NA;
        s.why = aprintf(&x->a, "no %srows of %s.csv match %s", status_col >= 0 ? "ok " : "", k_tables[sel->table],
                        sel->text);
    }
    return s;
}

/* ---- keys and series ----------------------------------------------------------------- */
static void key_add(ectx *x, kvp *k, int *nk, int cap, const char *n, const char *v, int scoped)
{
    if (*nk >= cap)
        return;
    k[*nk].n = astrdup(&x->a, n);
    k[*nk].v = astrdup(&x->a, v && *v ? v : "-");
    k[*nk].scoped = scoped;
    (*nk)++;
}

/* The key of a row: the free identity columns and knobs (without excl), or
 * exactly the by columns. */
static int row_key(ectx *x, const srows *s, int row, const char *excl, const node *fnode, kvp **out)
{
    const lat_table *t = s->t;
    int cap = 64, nk = 0;
    kvp *k = amalloc(&x->a, sizeof(kvp) * (size_t)cap);
    char buf[64];
    if (fnode && fnode->nby) {
        for (int i = 0; i < fnode->nby; i++)
            key_add(x, k, &nk, cap, fnode->by[i], fget(t, row, fnode->by[i], buf, sizeof buf), 0);
        *out = k;
        return nk;
    }
    const char *ex = excl ? canon_field(t, excl) : NULL;
    for (int i = 0; k_identity[i]; i++) {
        const char *n = k_identity[i];
        int c = lat_table_col(t, n);
        if (c < 0 || is_pinned(s, n) || (ex && !strcmp(ex, n)) || !strcmp(n, "pos"))
            continue;
        key_add(x, k, &nk, cap, n, t->cell[row][c], !strcmp(n, "form"));
    }
    int kc = lat_table_col(t, "knobs");
    for (const char *p = kc >= 0 ? t->cell[row][kc] : ""; *p;) {
        const char *e = p + strcspn(p, ";"), *eq = memchr(p, '=', (size_t)(e - p));
        if (eq && eq > p) {
            char *n = astrndup(&x->a, p, (size_t)(eq - p));
            if (strcmp(n, "pos") && !is_pinned(s, n) && !(ex && !strcmp(ex, n)))
                key_add(x, k, &nk, cap, n, astrndup(&x->a, eq + 1, (size_t)(e - eq - 1)), 1);
        }
        p = *e ? e + 1 : e;
    }
    *out = k;
    return nk;
}

static const char *key_string(ectx *x, const kvp *k, int nk)
{
    sbuf b = {amalloc(&x->a, 1024), 1024, 0};
    for (int i = 0; i < nk; i++)
        sb_add(&b, "%s=%s\x1f", k[i].n, k[i].v);
    return b.s;
}

static const char *row_disp(ectx *x, const lat_table *t, int row)
{
    const char *m = lat_table_get(t, row, "method"), *f = lat_table_get(t, row, "form");
    if (!*m)
        return NULL;
    return *f ? aprintf(&x->a, "%s.%s", m, f) : m;
}

typedef struct gent {
    const char *key;
    int row;
} gent;

static int gent_cmp(const void *a, const void *b)
{
    const gent *x = a, *y = b;
    int c = strcmp(x->key, y->key);
    return c ? c : (x->row > y->row) - (x->row < y->row);
}

typedef struct series {
    int *row;
    int n;
    elem proto; /* key, method, display of the series */
} series;

/* Method / display shared by all rows of a group, else NULL. */
static void common_disp(ectx *x, const lat_table *t, const int *rows, int n, elem *e)
{
    e->method = lat_table_get(t, rows[0], "method");
    e->disp = row_disp(x, t, rows[0]);
    for (int i = 1; i < n; i++) {
        if (e->method && strcmp(e->method, lat_table_get(t, rows[i], "method")))
            e->method = NULL, e->disp = NULL;
        const char *d = row_disp(x, t, rows[i]);
        if (e->disp && (!d || strcmp(e->disp, d)))
            e->disp = e->method;
    }
    if (e->method && !*e->method)
        e->method = NULL;
}

/* Groups the selected rows: one group when whole, else by key (without excl). */
static int make_series(ectx *x, const srows *s, const char *excl, const node *fnode, int whole, series **out)
{
    gent *g = amalloc(&x->a, sizeof(gent) * (size_t)s->n);
    for (int i = 0; i < s->n; i++) {
        kvp *k;
        int nk = whole ? 0 : row_key(x, s, s->row[i], excl, fnode, &k);
        g[i].key = whole ? "" : key_string(x, k, nk);
        g[i].row = s->row[i];
    }
    qsort(g, (size_t)s->n, sizeof(gent), gent_cmp);
    series *sr = amalloc(&x->a, sizeof(series) * (size_t)s->n);
    int ns = 0;
    for (int i = 0; i < s->n;) {
        int j = i;
        while (j < s->n && !strcmp(g[j].key, g[i].key))
            j++;
        series *c = &sr[ns++];
        c->n = j - i;
        c->row = amalloc(&x->a, sizeof(int) * (size_t)c->n);
        for (int k = 0; k < c->n; k++)
            c->row[k] = g[i + k].row;
        if (!whole)
            c->proto.nk = row_key(x, s, c->row[0], excl, fnode, &c->proto.k);
        common_disp(x, s->t, c->row, c->n, &c->proto);
        i = j;
    }
    *out = sr;
    return ns;
}

/* ---- pairing two vectors ------------------------------------------------------------ */
static int keys_match(const elem *l, const elem *r, int *common)
{
    int same = l->method && r->method && !strcmp(l->method, r->method);
    *common = 0;
    for (int i = 0; i < l->nk; i++) {
        if (l->k[i].scoped && !same)
            continue;
        for (int j = 0; j < r->nk; j++) {
            if (strcmp(l->k[i].n, r->k[j].n) || (r->k[j].scoped && !same))
                continue;
            (*common)++;
            if (!val_eq(l->k[i].v, r->k[j].v))
                return 0;
        }
    }
    return 1;
}

typedef struct pairs {
    int *l, *r;
    int n;
} pairs;

/* Elements of v that found no partner are dropped: say which. */
static void note_unpaired(ectx *x, const vec *v, const int *idx, int n)
{
    char *used = amalloc(&x->a, (size_t)v->n);
    for (int i = 0; i < n; i++)
        used[idx[i]] = 1;
    for (int i = 0; i < v->n; i++)
        if (!used[i])
            add_note(x, aprintf(&x->a, "unpaired, left out: %s", v->e[i].disp ? v->e[i].disp : "a value"));
}

static int pair_up(ectx *x, const vec *L, const vec *R, pairs *p, const char **why)
{
    memset(p, 0, sizeof *p);
    if ((double)L->n * R->n > MAX_PAIRS) {
        *why = "too many elements to pair";
        return -1;
    }
    size_t cap = 16;
    p->l = amalloc(&x->a, sizeof(int) * cap);
    p->r = amalloc(&x->a, sizeof(int) * cap);
    for (int i = 0; i < L->n; i++)
        for (int j = 0; j < R->n; j++) {
            int common;
            if (!keys_match(&L->e[i], &R->e[j], &common) || (!common && L->n > 1 && R->n > 1))
                continue;
            if ((size_t)p->n == cap) {
                int *nl = amalloc(&x->a, sizeof(int) * cap * 2), *nr = amalloc(&x->a, sizeof(int) * cap * 2);
                memcpy(nl, p->l, sizeof(int) * cap);
                memcpy(nr, p->r, sizeof(int) * cap);
                p->l = nl, p->r = nr, cap *= 2;
            }
            p->l[p->n] = i;
            p->r[p->n++] = j;
        }
    if (!p->n) {
        *why = aprintf(&x->a, "no element of %s pairs with one of %s", L->e[0].disp ? L->e[0].disp : "the left side",
                       R->e[0].disp ? R->e[0].disp : "the right side");
        return -1;
    }
    if (L->n > 1 && R->n > 1) {
        note_unpaired(x, L, p->l, p->n);
        note_unpaired(x, R, p->r, p->n);
    }
    return 0;
}

static const char *op_text(int op)
{
    switch (op) {
    case 'M': return "max";
    case 'm': return "min";
    case '~': return "vs";
    case '+': return "+";
    case '-': return "-";
    case '*': return "*";
    case '^': return "^";
    }
    return "/";
}

static elem combine(ectx *x, const elem *l, const elem *r, double v, int op)
{
    elem e;
    memset(&e, 0, sizeof e);
    e.v = v;
    e.isconst = l->isconst && r->isconst;
    if (r->isconst || l->isconst)
        e.method = r->isconst ? l->method : r->method;
    else /* a method only when both sides share it */
        e.method = (l->method && r->method && !strcmp(l->method, r->method)) ? l->method : NULL;
    if (l->isconst || !r->disp)
        e.disp = r->disp ? r->disp : l->disp;
    else if (r->isconst || !l->disp || !strcmp(l->disp, r->disp))
        e.disp = l->disp;
    else
        e.disp = aprintf(&x->a, "%s %s %s", l->disp, op_text(op), r->disp);
    e.detail = r->isconst ? l->detail : l->isconst ? r->detail : NULL;
    e.k = amalloc(&x->a, sizeof(kvp) * (size_t)(l->nk + r->nk + 1));
    for (int i = 0; i < l->nk; i++)
        e.k[e.nk++] = l->k[i];
    for (int j = 0; j < r->nk; j++) {
        int dup = 0;
        for (int i = 0; i < l->nk && !dup; i++)
            dup = !strcmp(l->k[i].n, r->k[j].n);
        if (!dup)
            e.k[e.nk++] = r->k[j];
    }
    return e;
}

/* ---- data functions ----------------------------------------------------------------- */
static vec eval_vec(ectx *x, const node *n);

typedef struct pt {
    double x, y;
} pt;

static int pt_cmp(const void *a, const void *b)
{
    const pt *p = a, *q = b;
    return (p->x > q->x) - (p->x < q->x);
}

/* (X, Y) of a series, sorted by X, duplicates of X averaged. */
static int series_points(ectx *x, const srows *s, const series *g, const node *n, pt **out)
{
    pt *p = amalloc(&x->a, sizeof(pt) * (size_t)(g->n + 1));
    int m = 0;
    for (int i = 0; i < g->n; i++) {
        double xv = fnum(s->t, g->row[i], n->name), yv = row_eval(s->t, g->row[i], n->y);
        if (isfinite(xv) && isfinite(yv))
            p[m++] = (pt){xv, yv};
    }
    qsort(p, (size_t)m, sizeof(pt), pt_cmp);
    int u = 0;
    for (int i = 0; i < m;) {
        int j = i;
        double sum = 0;
        while (j < m && p[j].x == p[i].x)
            sum += p[j++].y;
        p[u++] = (pt){p[i].x, sum / (j - i)};
        i = j;
    }
    *out = p;
    return u;
}

static double interp(const pt *p, int m, double at)
{
    if (at <= p[0].x)
        return p[0].y;
    for (int i = 1; i < m; i++)
        if (at <= p[i].x)
            return p[i - 1].y + (p[i].y - p[i - 1].y) * (at - p[i - 1].x) / (p[i].x - p[i - 1].x);
    return p[m - 1].y;
}

/* ∫_lo^hi of the piecewise-linear curve (held at its first value below it). */
static double integrate(const pt *p, int m, double lo, double hi)
{
    double sum = 0, a = lo;
    for (int i = 0; i <= m && a < hi; i++) {
        double b = i < m ? fmin(p[i].x, hi) : hi;
        if (b > a)
            sum += 0.5 * (interp(p, m, a) + interp(p, m, b)) * (b - a);
        a = fmax(a, b);
    }
    return sum;
}

static double log_slope(ectx *x, const pt *p, int m, const char **detail)
{
    double *lx = amalloc(&x->a, sizeof(double) * (size_t)m), *ly = amalloc(&x->a, sizeof(double) * (size_t)m);
    int k = 0;
    for (int i = 0; i < m; i++)
        if (p[i].x > 0 && p[i].y > 0) {
            lx[k] = log(p[i].x);
            ly[k++] = log(p[i].y);
        }
    if (k < 2)
        return NAN;
    double r2;
    double b = lat_fit_slope(lx, ly, k, NULL, &r2);
    if (fabs(b) < 1e-12) /* a constant up to the rounding of log() */
        b = 0, r2 = 1;
    *detail = aprintf(&x->a, "R² %.3f, %d pts %g–%g", r2, k, p[0].x, p[m - 1].x);
    return b;
}

/* One scalar from a top-level expression (at()'s x0, integral bounds). */
static int scalar_arg(ectx *x, const node *n, double *v)
{
    vec a = eval_vec(x, n);
    if (a.st || a.n != 1)
        return -1;
    *v = a.e[0].v;
    return isfinite(*v) ? 0 : -1;
}

/* slope / min_step / at / integral: one element per series. */
static vec series_fn(ectx *x, const node *n, const srows *s)
{
    series *g;
    int ng = make_series(x, s, n->name, n, 0, &g);
    double x0 = 0, lo = 0, hi = 0;
    if ((n->op == F_AT && scalar_arg(x, n->a, &x0)) ||
        (n->op == F_INTEGRAL && (scalar_arg(x, n->a, &lo) || scalar_arg(x, n->b, &hi))))
        return vfail(LAT_CLAIM_NA, "the position argument is not one finite number");
    vec v;
    memset(&v, 0, sizeof v);
    v.e = amalloc(&x->a, sizeof(elem) * (size_t)(ng + 1));
    const char *last_why = NULL;
    for (int i = 0; i < ng; i++) {
        pt *p;
        int m = series_points(x, s, &g[i], n, &p);
        elem e = g[i].proto;
        e.v = NAN;
        const char *lab = e.disp ? e.disp : k_fn[n->op];
        if (n->op == F_SLOPE && m >= 2)
            e.v = log_slope(x, p, m, &e.detail);
        else if (n->op == F_MINSTEP && m >= 2) {
            e.v = INFINITY;
            for (int k = 1; k < m; k++)
                e.v = fmin(e.v, p[k].y - p[k - 1].y);
            e.detail = aprintf(&x->a, "%d pts %g–%g", m, p[0].x, p[m - 1].x);
        } else if (n->op == F_AT) {
            for (int k = 0; k < m; k++)
                if (fabs(p[k].x - x0) <= 1e-9 * fabs(x0))
                    e.v = p[k].y;
            if (isnan(e.v))
                last_why = aprintf(&x->a, "no row with %s = %g for %s", n->name, x0, lab);
        } else if (n->op == F_INTEGRAL && m >= 1) {
            if (p[m - 1].x < hi || lo > hi)
                last_why = aprintf(&x->a, "%s: %s reaches %g, the integral needs %g", lab, n->name, p[m - 1].x, hi);
            else
                e.v = integrate(p, m, lo, hi);
        }
        if ((n->op == F_SLOPE || n->op == F_MINSTEP) && m < 2)
            last_why = aprintf(&x->a, "%s: %d distinct %s value%s (needs 2)", lab, m, n->name, m == 1 ? "" : "s");
        if (isnan(e.v)) {
            if (last_why)
                add_note(x, last_why);
            continue;
        }
        v.e[v.n++] = e;
    }
    if (!v.n)
        return vfail(LAT_CLAIM_NA, last_why ? last_why : aprintf(&x->a, "no usable series in %s", s->sel->text));
    return v;
}

/* max / min / mean / sum / count over rows, per group. */
static vec reduce_rows(ectx *x, const node *n, const srows *s)
{
    series *g;
    int ng = make_series(x, s, NULL, n, n->nby == 0, &g);
    vec v;
    memset(&v, 0, sizeof v);
    v.e = amalloc(&x->a, sizeof(elem) * (size_t)(ng + 1));
    for (int i = 0; i < ng; i++) {
        elem e = g[i].proto;
        double acc = n->op == F_MAX ? -INFINITY : n->op == F_MIN ? INFINITY : 0;
        int cnt = 0, arg = -1;
        for (int k = 0; k < g[i].n; k++) {
            double y = n->op == F_COUNT ? 1 : row_eval(s->t, g[i].row[k], n->y);
            if (!isfinite(y))
                continue;
            cnt++;
            if ((n->op == F_MAX && y > acc) || (n->op == F_MIN && y < acc))
                acc = y, arg = g[i].row[k];
            else if (n->op != F_MAX && n->op != F_MIN)
                acc += y;
        }
        if (!cnt && n->op != F_COUNT)
            continue;
        e.v = n->op == F_MEAN ? acc / cnt : n->op == F_COUNT ? cnt : acc;
        const char *at = arg >= 0 ? row_disp(x, s->t, arg) : NULL;
        if (at && g[i].n > 1 && (!e.disp || strcmp(e.disp, at)))
            e.detail = aprintf(&x->a, "%s of %d rows, at %s", k_fn[n->op], cnt, at);
        else if (g[i].n > 1)
            e.detail = aprintf(&x->a, "%s of %d rows", k_fn[n->op], cnt);
        v.e[v.n++] = e;
    }
    if (!v.n)
        return vfail(LAT_CLAIM_NA, aprintf(&x->a, "%s is empty in every row of %s", n->y ? n->y->text : "the value",
                                           s->sel->text));
    return v;
}

static vec value_rows(ectx *x, const node *n, const srows *s)
{
    vec v;
    memset(&v, 0, sizeof v);
    v.e = amalloc(&x->a, sizeof(elem) * (size_t)(s->n + 1));
    for (int i = 0; i < s->n; i++) {
        double y = row_eval(s->t, s->row[i], n->y);
        if (!isfinite(y))
            continue;
        elem *e = &v.e[v.n++];
        e->v = y;
        e->nk = row_key(x, s, s->row[i], NULL, NULL, &e->k);
        common_disp(x, s->t, &s->row[i], 1, e);
    }
    if (!v.n)
        return vfail(LAT_CLAIM_NA, aprintf(&x->a, "%s is empty in every row of %s", n->y->text, s->sel->text));
    return v;
}

/* (x, yA − yB) at the X values both curves have. */
static int cross_points(ectx *x, const pt *pa, int ma, const pt *pb, int mb, pt **out)
{
    pt *c = amalloc(&x->a, sizeof(pt) * (size_t)(ma + 1));
    int m = 0;
    for (int a = 0, b = 0; a < ma && b < mb;)
        if (pa[a].x < pb[b].x)
            a++;
        else if (pb[b].x < pa[a].x)
            b++;
        else {
            c[m++] = (pt){pa[a].x, pa[a].y - pb[b].y};
            a++, b++;
        }
    *out = c;
    return m;
}

/* The crossover of one pair of series from their differences c (A − B). */
static void cross_elem(ectx *x, const node *n, const pt *c, int m, elem *e)
{
    int last = -1;
    for (int k = 0; k < m; k++)
        if (c[k].y >= 0)
            last = k;
    if (last == m - 1) {
        e->v = INFINITY;
        e->detail = aprintf(&x->a, "not faster anywhere up to %s = %g", n->name, c[m - 1].x);
    } else {
        e->v = c[last + 1].x;
        e->detail = last < 0 ? aprintf(&x->a, "faster at every %s from %g", n->name, c[0].x)
                             : aprintf(&x->a, "slower at %g, faster from %g to %g", c[last].x, c[last + 1].x,
                                       c[m - 1].x);
    }
}

/* The first X from which A's Y stays below B's, per pair of series. */
static vec crossover(ectx *x, const node *n, const srows *sa, const srows *sb)
{
    series *ga, *gb;
    int na = make_series(x, sa, n->name, NULL, 0, &ga), nb = make_series(x, sb, n->name, NULL, 0, &gb);
    if ((double)na * nb > MAX_PAIRS)
        return vfail(LAT_CLAIM_NA, "too many series to pair");
    pt **pa = amalloc(&x->a, sizeof(pt *) * (size_t)na), **pb = amalloc(&x->a, sizeof(pt *) * (size_t)nb);
    int *ma = amalloc(&x->a, sizeof(int) * (size_t)na), *mb = amalloc(&x->a, sizeof(int) * (size_t)nb);
    for (int i = 0; i < na; i++)
        ma[i] = series_points(x, sa, &ga[i], n, &pa[i]);
    for (int j = 0; j < nb; j++)
        mb[j] = series_points(x, sb, &gb[j], n, &pb[j]);
    vec v;
    memset(&v, 0, sizeof v);
    v.e = amalloc(&x->a, sizeof(elem) * (size_t)(na * nb + 1));
    for (int i = 0; i < na; i++)
        for (int j = 0; j < nb; j++) {
            int common;
            pt *c;
            if (!keys_match(&ga[i].proto, &gb[j].proto, &common) || (!common && na > 1 && nb > 1))
                continue;
            int m = cross_points(x, pa[i], ma[i], pb[j], mb[j], &c);
            if (m < 2)
                continue;
            elem e = combine(x, &ga[i].proto, &gb[j].proto, 0, '~');
            e.disp = aprintf(&x->a, "%s vs %s", ga[i].proto.disp ? ga[i].proto.disp : "A",
                             gb[j].proto.disp ? gb[j].proto.disp : "B");
            cross_elem(x, n, c, m, &e);
            v.e[v.n++] = e;
        }
    if (!v.n)
        return vfail(LAT_CLAIM_NA, aprintf(&x->a, "no two series of %s and %s share 2 values of %s", sa->sel->text,
                                           sb->sel->text, n->name));
    return v;
}

static vec reduce_vec(ectx *x, const node *n)
{
    vec a = eval_vec(x, n->a);
    if (a.st)
        return a;
    elem e;
    memset(&e, 0, sizeof e);
    double acc = n->op == F_MAX ? -INFINITY : n->op == F_MIN ? INFINITY : 0;
    int cnt = 0, arg = -1;
    for (int i = 0; i < a.n; i++) {
        double y = a.e[i].v;
        if (isnan(y))
            continue;
        cnt++;
        if ((n->op == F_MAX && y >= acc) || (n->op == F_MIN && y <= acc))
            acc = y, arg = i;
        else if (n->op != F_MAX && n->op != F_MIN)
            acc += y;
    }
    if (!cnt)
        return vfail(LAT_CLAIM_NA, "nothing to reduce");
    e.v = n->op == F_MEAN ? acc / cnt : acc;
    if (arg >= 0) {
        e.disp = a.e[arg].disp;
        e.method = a.e[arg].method;
    }
    e.isconst = a.n == 1 && a.e[0].isconst;
    if (a.n > 1)
        e.detail = aprintf(&x->a, "%s of %d", k_fn[n->op], cnt);
    vec v;
    memset(&v, 0, sizeof v);
    v.e = amalloc(&x->a, sizeof(elem));
    v.e[0] = e;
    v.n = 1;
    return v;
}

/* Does a row expression read a timing (t_*_ns, cv, tokens_per_s, …)? */
static int uses_timing(const node *n)
{
    if (!n)
        return 0;
    if (n->kind == N_FIELD)
        return !strncmp(n->name, "t_", 2) || !strcmp(n->name, "cv") || !strcmp(n->name, "tokens_per_s") ||
               !strcmp(n->name, "gflops") || !strcmp(n->name, "gbytes_per_s");
    return uses_timing(n->a) || uses_timing(n->b);
}

/* Timings from cells flagged noisy (cv > 5 %) are used, but counted. */
static void count_noisy(ectx *x, const node *n, const srows *s)
{
    int st = lat_table_col(s->t, "status"), tb = s->sel->table;
    if (st < 0 || !uses_timing(n->y))
        return;
    if (!x->counted[tb])
        x->counted[tb] = amalloc(&x->a, (size_t)s->t->nrow + 1);
    for (int i = 0; i < s->n; i++) {
        if (x->counted[tb][s->row[i]])
            continue;
        x->counted[tb][s->row[i]] = 1;
        x->rows++;
        x->noisy += !strcmp(s->t->cell[s->row[i]][st], "noisy");
    }
}

static vec call(ectx *x, const node *n)
{
    if (n->vector_arg)
        return reduce_vec(x, n);
    srows s = select_rows(x, n->s1);
    if (s.st)
        return vfail(s.st, s.why);
    count_noisy(x, n, &s);
    switch (n->op) {
    case F_VALUE: return value_rows(x, n, &s);
    case F_MAX:
    case F_MIN:
    case F_MEAN:
    case F_SUM:
    case F_COUNT: return reduce_rows(x, n, &s);
    case F_CROSS: {
        srows s2 = select_rows(x, n->s2);
        if (s2.st)
            return vfail(s2.st, s2.why);
        count_noisy(x, n, &s2);
        return crossover(x, n, &s, &s2);
    }
    default: return series_fn(x, n, &s);
    }
}

/* Of two operands at least one of which failed: not implemented wins over not
 * measurable (the method is the first thing missing); both reasons are kept. */
static vec first_failure(ectx *x, const vec *a, const vec *b)
{
    if (!a->st || !b->st)
        return a->st ? *a : *b;
    vec v = (b->st == LAT_CLAIM_NYI && a->st != LAT_CLAIM_NYI) ? *b : *a;
    const vec *o = v.why == a->why ? b : a;
    if (o->why && v.why && strcmp(o->why, v.why))
        v.why = aprintf(&x->a, "%s; %s", v.why, o->why);
    return v;
}

static vec eval_vec(ectx *x, const node *n)
{
    switch (n->kind) {
    case N_NUM: return vscalar(x, n->num);
    case N_NEG:
    case N_FN: {
        vec a = eval_vec(x, n->a);
        if (a.st)
            return a;
        vec v = a;
        v.e = amalloc(&x->a, sizeof(elem) * (size_t)a.n);
        for (int i = 0; i < a.n; i++) {
            v.e[i] = a.e[i];
            v.e[i].v = n->kind == N_NEG ? -a.e[i].v : math1(n->op, a.e[i].v);
        }
        return v;
    }
    case N_BIN: {
        vec a = eval_vec(x, n->a), b = eval_vec(x, n->b);
        if (a.st || b.st)
            return first_failure(x, &a, &b);
        pairs p;
        const char *why;
        if (pair_up(x, &a, &b, &p, &why))
            return vfail(LAT_CLAIM_NA, why);
        vec v;
        memset(&v, 0, sizeof v);
        v.e = amalloc(&x->a, sizeof(elem) * (size_t)p.n);
        for (int i = 0; i < p.n; i++) {
            const elem *l = &a.e[p.l[i]], *r = &b.e[p.r[i]];
            v.e[v.n++] = combine(x, l, r, arith(n->op, l->v, r->v), n->op);
        }
        return v;
    }
    case N_CALL: return call(x, n);
    }
    return vfail(LAT_CLAIM_NA, "not a number");
}

/* ---- comparisons ---------------------------------------------------------------- */
static int worst(int a, int b) /* and-combination: fails > not implemented > not measurable > holds */
{
    static const int rank[4] = {0, 3, 1, 2}; /* HOLDS, FAILS, NA, NYI */
    return rank[b] > rank[a] ? b : a;
}

/* Display label of e: method.form plus the key columns that vary in v. */
static const char *label(ectx *x, const vec *v, const elem *e)
{
    sbuf b = {amalloc(&x->a, 256), 256, 0};
    if (e->disp)
        sb_add(&b, "%s", e->disp);
    for (int i = 0; i < e->nk; i++) {
        const kvp *k = &e->k[i];
        if (!strcmp(k->n, "method") || !strcmp(k->n, "form"))
            continue;
        int varies = 0;
        for (int j = 0; j < v->n && !varies; j++)
            for (int q = 0; q < v->e[j].nk; q++)
                if (!strcmp(v->e[j].k[q].n, k->n) && strcmp(v->e[j].k[q].v, k->v))
                    varies = 1;
        if (varies)
            sb_add(&b, "%s%s=%s", b.len ? " " : "", k->n, k->v);
    }
    return b.s;
}

static int relop(int op, double a, double b)
{
    switch (op) {
    case OP_LE: return a <= b;
    case OP_GE: return a >= b;
    case OP_EQ: return a == b;
    case OP_NE: return a != b;
    case '<': return a < b;
    case '>': return a > b;
    }
    return 0;
}

static void meas_elem(ectx *x, const vec *v, const elem *e, int first, int ok, const elem *rhs)
{
    const char *lab = label(x, v, e);
    sb_add(&x->meas, "%s%s%s%s", first ? "" : "; ", lab, *lab ? " " : "", fmtnum(x, e->v));
    if (e->detail)
        sb_add(&x->meas, " (%s)", e->detail);
    if (rhs)
        sb_add(&x->meas, " vs %s", fmtnum(x, rhs->v));
    if (!ok)
        sb_add(&x->meas, " ✗");
}

/* Separates comparisons; names the function that produced the left side. */
static void meas_sep(ectx *x, const node *lhs)
{
    if (x->meas.len)
        sb_add(&x->meas, " ∧ ");
    if (lhs->kind == N_CALL && !lhs->vector_arg)
        sb_add(&x->meas, "%s: ", k_fn[lhs->op]);
}

static int fail_vec(ectx *x, const vec *v)
{
    add_why(x, v->why);
    return v->st;
}

static int eval_in(ectx *x, const node *n)
{
    vec a = eval_vec(x, n->a), lo = eval_vec(x, n->b), hi = eval_vec(x, n->c);
    if (a.st || lo.st || hi.st) {
        vec f = first_failure(x, &a, &lo);
        f = first_failure(x, &f, &hi);
        return fail_vec(x, &f);
    }
    if (lo.n != 1 || hi.n != 1) {
        add_why(x, "the bounds of in [a, b] must be single values");
        return LAT_CLAIM_NA;
    }
    meas_sep(x, n->a);
    int st = LAT_CLAIM_HOLDS;
    for (int i = 0; i < a.n; i++) {
        double v = a.e[i].v;
        int ok = !isnan(v) && v >= lo.e[0].v && v <= hi.e[0].v;
        meas_elem(x, &a, &a.e[i], i == 0, ok || isnan(v), NULL);
        st = worst(st, isnan(v) ? LAT_CLAIM_NA : ok ? LAT_CLAIM_HOLDS : LAT_CLAIM_FAILS);
    }
    if (st == LAT_CLAIM_NA)
        add_why(x, "a value is undefined");
    return st;
}

static int eval_cmp(ectx *x, const node *n)
{
    vec a = eval_vec(x, n->a), b = eval_vec(x, n->b);
    if (a.st || b.st) {
        vec f = first_failure(x, &a, &b);
        return fail_vec(x, &f);
    }
    pairs p;
    const char *why;
    if (pair_up(x, &a, &b, &p, &why)) {
        add_why(x, why);
        return LAT_CLAIM_NA;
    }
    meas_sep(x, n->a);
    int st = LAT_CLAIM_HOLDS, show_rhs = n->b->has_sel;
    vec shown = a;
    shown.e = amalloc(&x->a, sizeof(elem) * (size_t)p.n);
    shown.n = p.n;
    for (int i = 0; i < p.n; i++)
        shown.e[i] = combine(x, &a.e[p.l[i]], &b.e[p.r[i]], a.e[p.l[i]].v, '/');
    for (int i = 0; i < p.n; i++) {
        double l = a.e[p.l[i]].v, r = b.e[p.r[i]].v;
        int undefined = isnan(l) || isnan(r), ok = !undefined && relop(n->op, l, r);
        shown.e[i].disp = a.e[p.l[i]].disp;
        shown.e[i].detail = a.e[p.l[i]].detail;
        meas_elem(x, &shown, &shown.e[i], i == 0, ok || undefined, show_rhs ? &b.e[p.r[i]] : NULL);
        st = worst(st, undefined ? LAT_CLAIM_NA : ok ? LAT_CLAIM_HOLDS : LAT_CLAIM_FAILS);
    }
    if (st == LAT_CLAIM_NA)
        add_why(x, "a value is undefined");
    return st;
}

static int eval_bool(ectx *x, const node *n)
{
    switch (n->kind) {
    case N_CMP: return eval_cmp(x, n);
    case N_IN: return eval_in(x, n);
    case N_AND: {
        int st = LAT_CLAIM_HOLDS;
        for (int i = 0; i < n->npart; i++)
            st = worst(st, eval_bool(x, n->part[i]));
        return st;
    }
    }
    return LAT_CLAIM_NA;
}

/* ---- one claim ------------------------------------------------------------------ */
static void coverage(ectx *x, const claim *c, lat_claim_result *r)
{
    sbuf b = {r->coverage, sizeof r->coverage, 0};
    sbuf nyi = {amalloc(&x->a, 512), 512, 0}, nodata = {amalloc(&x->a, 512), 512, 0};
    int measured = 0;
    for (int i = 0; i < c->nmethods; i++) {
        const char *m = c->methods[i];
        int seen = 0;
        for (int k = 0; k < x->nseen && !seen; k++)
            seen = !strcmp(x->seen[k], m);
        if (!lat_find_method(m))
            sb_add(&nyi, "%s%s", nyi.len ? ", " : "", m);
        else if (!seen)
            sb_add(&nodata, "%s%s", nodata.len ? ", " : "", m);
        else
            measured++;
    }
    if (measured == c->nmethods) {
        sb_add(&b, "all %d methods", c->nmethods);
        return;
    }
    sb_add(&b, "%d of %d methods", measured, c->nmethods);
    if (nyi.len)
        sb_add(&b, "; not yet implemented: %s", nyi.s);
    if (nodata.len)
        sb_add(&b, "; no rows: %s", nodata.s);
}

static void analytic_defs(ectx *x, const claim *c)
{
    for (int i = 0; i < c->p.ndef; i++) {
        if (c->p.def_node[i]->kind == N_SEL)
            continue;
        vec v = eval_vec(x, c->p.def_node[i]);
        if (!v.st && v.n == 1)
            sb_add(&x->meas, "%s%s = %s", x->meas.len ? ", " : "", c->p.def_name[i], fmtnum(x, v.e[0].v));
    }
    if (x->meas.len)
        sb_add(&x->meas, ": ");
}

static void eval_claim(const claim *c, run *rn, lat_claim_result *r)
{
    memset(r, 0, sizeof *r);
    r->id = c->f[C_ID];
    const node *root = c->p.root;
    if (root->kind == N_NA) {
        r->verdict = LAT_CLAIM_NA;
        snprintf(r->reason, sizeof r->reason, "%s", root->name);
        return;
    }
    r->analytic = !root->has_sel;
    if (root->has_sel && c->nmethods) {
        int reg = 0;
        for (int i = 0; i < c->nmethods; i++)
            reg += lat_find_method(c->methods[i]) != NULL;
        if (!reg) {
            r->verdict = LAT_CLAIM_NYI;
            snprintf(r->reason, sizeof r->reason, "not yet implemented: %s", c->f[C_METHOD]);
            return;
        }
    }
    ectx *x = calloc(1, sizeof *x);
    if (!x)
        lat_die(1, "claims: out of memory");
    x->run = rn;
    x->meas = (sbuf){x->measbuf, sizeof x->measbuf, 0};
    x->notes = (sbuf){x->notesbuf, sizeof x->notesbuf, 0};
    x->why = (sbuf){x->whybuf, sizeof x->whybuf, 0};
    if (r->analytic)
        analytic_defs(x, c);
    size_t pre = x->meas.len;
    x->meas.len = 0; /* comparisons separate with ∧ only among themselves */
    char head[512];
    snprintf(head, sizeof head, "%.*s", (int)pre, x->measbuf);
    x->measbuf[0] = 0;
    r->verdict = (lat_verdict)eval_bool(x, root);
    sbuf m = {r->measured, sizeof r->measured, 0};
    if (x->noisy)
        add_note(x, aprintf(&x->a, "%ld of %ld timed rows noisy (cv > 5 %%)", x->noisy, x->rows));
    sb_add(&m, "%s%s%s%s", head, x->measbuf, x->notes.len ? " — " : "", x->notesbuf);
    if (r->verdict == LAT_CLAIM_NA || r->verdict == LAT_CLAIM_NYI)
        snprintf(r->reason, sizeof r->reason, "%s", x->whybuf);
    if (root->has_sel && c->nmethods > 1)
        coverage(x, c, r);
    afree(&x->a);
    free(x);
}

void lat_claims_eval(const lat_claims *c, int i, const char *run_dir, lat_claim_result *r)
{
    run *rn = malloc(sizeof *rn);
    if (!rn)
        lat_die(1, "claims: out of memory");
    run_init(rn, run_dir);
    eval_claim(&c->c[i], rn, r);
    run_free(rn);
    free(rn);
}

/* ---- reports: claims.md, claims.csv ------------------------------------------------ */
/* A string value of meta.json (flat "key": value pairs), "" when absent. */
static void meta_get(const char *json, const char *key, char *out, size_t len)
{
    out[0] = 0;
    char pat[80];
    snprintf(pat, sizeof pat, "\"%s\":", key);
    const char *p = json ? strstr(json, pat) : NULL;
    if (!p)
        return;
    p += strlen(pat);
    while (*p == ' ')
        p++;
    int quoted = *p == '"';
    p += quoted;
    size_t n = 0;
    while (*p && n + 1 < len && (quoted ? *p != '"' : (*p != ',' && *p != '\n' && *p != '}')))
        out[n++] = *p++;
    out[n] = 0;
}

static char *read_small(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *buf = calloc(1, 65537);
    if (buf)
        buf[fread(buf, 1, 65536, f)] = 0;
    fclose(f);
    return buf;
}

/* Markdown cell: '|' escaped, no line breaks. */
static void md_cell(FILE *f, const char *s)
{
    fputc(' ', f);
    for (; s && *s; s++) {
        if (*s == '|')
            fputs("\\|", f);
        else if (*s == '\n' || *s == '\r' || *s == '\t')
            fputc(' ', f);
        else
            fputc(*s, f);
    }
    fputs(" |", f);
}

/* CSV field in the project's way: no quoting, so ',' → ';'. */
static void csv_field(FILE *f, const char *s, int last)
{
    for (; s && *s; s++)
        fputc(*s == ',' ? ';' : (*s == '\n' || *s == '\r' || *s == '"') ? ' ' : *s, f);
    fputc(last ? '\n' : ',', f);
}

static const char *verdict_md(const lat_claim_result *r, char *buf, size_t len)
{
    switch (r->verdict) {
    case LAT_CLAIM_HOLDS:
    case LAT_CLAIM_FAILS:
        snprintf(buf, len, "**%s**%s%s%s", lat_verdict_name(r->verdict), r->analytic ? " (analytic)" : "",
                 r->coverage[0] && strncmp(r->coverage, "all ", 4) ? " — " : "",
                 r->coverage[0] && strncmp(r->coverage, "all ", 4) ? r->coverage : "");
        break;
    case LAT_CLAIM_NA: snprintf(buf, len, "not measurable here: %s", r->reason); break;
    case LAT_CLAIM_NYI: {
        const char *w = r->reason;
        if (!strncmp(w, "not yet implemented: ", 21))
            w += 21;
        snprintf(buf, len, "method not yet implemented (%s)", w);
        break;
    }
    }
    return buf;
}

static void md_header(FILE *f, const char *run_dir, const char *tsv_name, int n, const int counts[4])
{
    char path[4200], id[256], cpu[256], cores[32], cc[256], blas[256], commit[64], date[64], isa[64];
    snprintf(path, sizeof path, "%s/meta.json", run_dir);
    char *meta = read_small(path);
    meta_get(meta, "run_id", id, sizeof id);
    meta_get(meta, "cpu_model", cpu, sizeof cpu);
    meta_get(meta, "cores", cores, sizeof cores);
    meta_get(meta, "compiler", cc, sizeof cc);
    meta_get(meta, "openblas_config", blas, sizeof blas);
    meta_get(meta, "git_commit", commit, sizeof commit);
    meta_get(meta, "date_utc", date, sizeof date);
    meta_get(meta, "impl_isa", isa, sizeof isa);
    char load[64];
    meta_get(meta, "load_avg", load, sizeof load);
    for (int sp = 0, i = 0; load[i]; i++) /* the 1, 5 and 15 minute averages */
        if (load[i] == ' ' && ++sp == 3)
            load[i] = 0;
    free(meta);
    if (!id[0]) {
        const char *sl = strrchr(run_dir, '/');
        snprintf(id, sizeof id, "%s", sl && sl[1] ? sl + 1 : run_dir);
    }
    fprintf(f, "# Claims: run %s\n\n", id);
    if (cpu[0])
        fprintf(f, "Machine: %s, %s cores, %s; %s; %s. Commit %s, %s. Load average at the start: %s.\n\n", cpu,
                cores, isa[0] ? isa : "?", cc, blas, commit, date, load[0] ? load : "?");
    else
        fprintf(f, "Machine: unknown (no meta.json in the run folder).\n\n");
    fprintf(f, "%d claims from `%s`: %d hold, %d do not hold, %d not measurable here, %d method not yet "
               "implemented.\n\n", n, tsv_name, counts[0], counts[1], counts[2], counts[3]);
    fprintf(f, "Every verdict comes from this run's own CSVs (bench, decode, accuracy, check, roofline, …) through "
               "the predicate shown; *analytic* rows compute the paper's own arithmetic. Thresholds are the "
               "spec's (`spec/claims.md`); those it marks \"calibrate\" are stated as given, not tuned. Measured "
               "values failing their bound are marked ✗. GPU speed-ups are not expected to reproduce in "
               "magnitude on a CPU: the predicates test the mechanism.\n\n");
    fprintf(f, "| id | method | claim | paper reported | predicate | measured | verdict |\n");
    fprintf(f, "|---|---|---|---|---|---|---|\n");
}

static void md_row(FILE *f, const claim *c, const lat_claim_result *r)
{
    char buf[2048], v[2048];
    fprintf(f, "|");
    md_cell(f, c->f[C_ID]);
    md_cell(f, c->f[C_METHOD]);
    snprintf(buf, sizeof buf, "%s — %s [%s]", c->f[C_CLAIM], c->f[C_SOURCE], c->f[C_PROVENANCE]);
    md_cell(f, buf);
    snprintf(buf, sizeof buf, "%s%s%s%s", c->f[C_REPORTED], c->f[C_SETTING][0] ? " (" : "", c->f[C_SETTING],
             c->f[C_SETTING][0] ? ")" : "");
    md_cell(f, buf);
    snprintf(buf, sizeof buf, "`%s`", c->f[C_PREDICATE]);
    md_cell(f, buf);
    md_cell(f, r->measured[0] ? r->measured : "—");
    md_cell(f, verdict_md(r, v, sizeof v));
    fputc('\n', f);
}

static FILE *open_tmp(const char *dir, const char *name, char *tmp, size_t len)
{
    snprintf(tmp, len, "%s/%s.tmp", dir, name);
    return fopen(tmp, "w");
}

static int close_tmp(FILE *f, const char *tmp, const char *dir, const char *name)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    int bad = ferror(f);
    bad |= fclose(f) != 0;
    if (bad || rename(tmp, path) != 0) {
        remove(tmp);
        return -1;
    }
    return 0;
}

int lat_claims_report(const lat_claims *c, const char *run_dir, const char *tsv_name, FILE *log, int counts[4])
{
    int cnt[4] = {0, 0, 0, 0};
    lat_claim_result *res = calloc((size_t)c->n + 1, sizeof *res);
    run *rn = malloc(sizeof *rn);
    if (!res || !rn)
        lat_die(1, "claims: out of memory");
    run_init(rn, run_dir);
    for (int i = 0; i < c->n; i++) {
        eval_claim(&c->c[i], rn, &res[i]);
        cnt[res[i].verdict]++;
        if (log)
            fprintf(log, "%-6s %-27s %s\n", c->c[i].f[C_ID], lat_verdict_name(res[i].verdict),
                    res[i].verdict >= LAT_CLAIM_NA ? res[i].reason : res[i].measured);
    }
    run_free(rn);
    free(rn);
    char tmp_md[4200], tmp_csv[4200], run_id[256];
    const char *sl = strrchr(run_dir, '/');
    snprintf(run_id, sizeof run_id, "%s", sl && sl[1] ? sl + 1 : run_dir);
    FILE *md = open_tmp(run_dir, "claims.md", tmp_md, sizeof tmp_md);
    FILE *csv = md ? open_tmp(run_dir, "claims.csv", tmp_csv, sizeof tmp_csv) : NULL;
    int rc = -1;
    if (md && csv) {
        md_header(md, run_dir, tsv_name, c->n, cnt);
        fprintf(csv, "schema_version,run_id,id,method,provenance,basis,verdict,measured,reason,coverage\n");
        for (int i = 0; i < c->n; i++) {
            const claim *cl = &c->c[i];
            md_row(md, cl, &res[i]);
            fprintf(csv, "%d,", LAT_SCHEMA_VERSION);
            csv_field(csv, run_id, 0);
            csv_field(csv, cl->f[C_ID], 0);
            csv_field(csv, cl->f[C_METHOD], 0);
            csv_field(csv, cl->f[C_PROVENANCE], 0);
            csv_field(csv, cl->p.root->kind == N_NA ? "na" : res[i].analytic ? "analytic" : "measured", 0);
            csv_field(csv, lat_verdict_name(res[i].verdict), 0);
            csv_field(csv, res[i].measured, 0);
            csv_field(csv, res[i].reason, 0);
            csv_field(csv, res[i].coverage, 1);
        }
        /* The published MQAR points (data/mqar_refpoints.tsv beside the claims
         * file), when the run has MQAR results and the file exists. */
        char refs[4200];
        const char *sl2 = strrchr(tsv_name, '/');
        snprintf(refs, sizeof refs, "%.*s%smqar_refpoints.tsv", sl2 ? (int)(sl2 - tsv_name) : 0, tsv_name,
                 sl2 ? "/" : "");
        FILE *probe = fopen(refs, "rb");
        if (probe) {
            fclose(probe);
            int rc_ref[3];
            int nref = lat_mqar_refpoints(md, run_dir, refs, rc_ref, stderr);
            if (nref > 0 && log)
                fprintf(log, "MQAR reference points (spec B.2): %d agree, %d differ, %d not comparable\n", rc_ref[0],
                        rc_ref[1], rc_ref[2]);
        }
        fprintf(md, "\n## Notes\n\n");
        for (int i = 0; i < c->n; i++)
            if (c->c[i].f[C_NOTE][0])
                fprintf(md, "- **%s**: %s\n", c->c[i].f[C_ID], c->c[i].f[C_NOTE]);
        int e1 = close_tmp(md, tmp_md, run_dir, "claims.md");
        int e2 = close_tmp(csv, tmp_csv, run_dir, "claims.csv");
        md = csv = NULL;
        rc = (e1 || e2) ? -1 : 0;
    }
    if (md)
        fclose(md), remove(tmp_md);
    if (csv)
        fclose(csv), remove(tmp_csv);
    free(res);
    if (counts)
        memcpy(counts, cnt, sizeof cnt);
    return rc;
}
