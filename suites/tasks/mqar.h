/* mqar.h — `latbench mqar`: train the task models (model.h) on MQAR and
 * selective copying and write RUN/mqar.csv, selcopy.csv and the tables
 * (issue 7; spec/claims.md Part B, B.6 tiers). See mqar.c. */
#ifndef MQ_MQAR_H
#define MQ_MQAR_H

/* argv[0] is "mqar". Returns the process exit status. */
int lat_cmd_mqar(int argc, char **argv);

#endif
