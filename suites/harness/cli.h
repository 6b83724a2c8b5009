/* cli.h — command-line pieces shared by the subcommands. */
#ifndef LAT_CLI_H
#define LAT_CLI_H

#include "cell.h"

typedef struct lat_cli_cell {
    lat_cell cell;
    const char *out_dir;
} lat_cli_cell;

/* Parses `run`-style options into a validated cell. Prints one error line and
 * returns 2 on bad input, 1 after --help, 0 on success. */
int lat_cli_parse_cell(int argc, char **argv, lat_cli_cell *cc, void (*help)(void));
/* Creates dir (and parents) and checks it is writable; one error line and -1
 * otherwise. */
int lat_cli_prepare_dir(const char *dir, const char *what);
/* Takes an exclusive lock on the run folder dir (flock on the folder itself,
 * no file left behind) for the rest of the process, so that a second
 * resumable writer (sweep, perf, mqar) started on the same folder stops with
 * one error line instead of running the same cells and appending duplicate
 * rows; -1 then. Taking it again in the same process is a no-op. */
int lat_cli_lock_dir(const char *dir, const char *what);
/* "a,b" (NULL = all) → methods; one error line listing the known ones and
 * -1 on an unknown name. */
int lat_cli_method_list(const char *csv, const lat_method **out, int max);
/* Comma-separated names of all methods / of a method's forms. */
void lat_cli_known_methods(char *buf, size_t len);
void lat_cli_known_forms(const lat_method *m, char *buf, size_t len);

#endif
