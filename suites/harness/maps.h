/* maps.h — `latbench maps`: attention-map diagnostics for claims FL1, AG1b (maps.c). */
#ifndef LAT_MAPS_H
#define LAT_MAPS_H
int lat_cmd_maps(int argc, char **argv);
#endif
