/* budget.h — `latbench budget`: memory-budgeted generation throughput (budget.c). */
#ifndef LAT_BUDGET_H
#define LAT_BUDGET_H
int lat_cmd_budget(int argc, char **argv);
#endif
