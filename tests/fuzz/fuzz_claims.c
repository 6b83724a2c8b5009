/* fuzz_claims.c — libFuzzer harness for the claims-table parser and
 * evaluator (make fuzz): the target is tests/claims_fuzz.c's
 * LLVMFuzzerTestOneInput. With LAT_FUZZ_RUN=DIR every parsed claim is also
 * evaluated against the run folder DIR. */
#define LAT_LIBFUZZER
#include "../claims_fuzz.c"
