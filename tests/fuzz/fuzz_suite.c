/* fuzz_suite.c — libFuzzer harness for the suite-file parser and the
 * expansion of a parsed suite into cells (make fuzz). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../suites/harness/suite.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int quiet;
    if (!quiet) {
        quiet = 1;
        lat_set_errf(fopen("/dev/null", "w"));
    }
    char *text = malloc(size + 1);
    memcpy(text, data, size);
    text[size] = 0;
    lat_suite *s = malloc(sizeof *s);
    if (lat_suite_parse_text(text, "fuzz.suite", s) == 0) {
        lat_task *tasks = NULL;
        int n = lat_suite_tasks(s, &tasks);
        for (int i = 0; i < n && i < 64; i++) {
            char key[512];
            lat_task_key(&tasks[i], key, sizeof key);
        }
        free(tasks);
    }
    free(s);
    free(text);
    return 0;
}
