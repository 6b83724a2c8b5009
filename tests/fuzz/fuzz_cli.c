/* fuzz_cli.c — libFuzzer harness for the `run` command-line parser: the
 * input is split on newlines into arguments (make fuzz). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../suites/harness/cli.h"

static void no_help(void) {}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int quiet;
    if (!quiet) {
        quiet = 1;
        lat_set_errf(fopen("/dev/null", "w"));
    }
    if (size > 4096)
        return 0;
    char *text = malloc(size + 1);
    memcpy(text, data, size);
    text[size] = 0;
    char *argv[130];
    int argc = 0;
    argv[argc++] = "run";
    for (char *p = text; argc < 129;) {
        argv[argc++] = p;
        char *nl = strchr(p, '\n');
        if (!nl)
            break;
        *nl = 0;
        p = nl + 1;
    }
    argv[argc] = NULL;
    lat_cli_cell cc;
    if (lat_cli_parse_cell(argc, argv, &cc, no_help) == 0) {
        /* a parsed cell must be internally consistent */
        char why[256];
        if (lat_shape_check(cc.cell.m, &cc.cell.s, why, sizeof why) != LAT_OK)
            abort();
        (void)lat_problem_estimate(cc.cell.m, &cc.cell.s, cc.cell.f, cc.cell.threads, 1);
    }
    free(text);
    return 0;
}
