/* Host runner for a tinyq model: reads TINYQ_INPUT_SIZE bytes from stdin,
 * invokes the model RUNS times (argv[1], default 1), writes
 * TINYQ_OUTPUT_SIZE bytes to stdout and the mean nanoseconds per inference
 * to stderr. */
#define _POSIX_C_SOURCE 199309L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tinyq_model.h"

static unsigned char input[TINYQ_INPUT_SIZE];
static unsigned char output[TINYQ_OUTPUT_SIZE];

int main(int argc, char **argv) {
    const long runs = argc > 1 ? strtol(argv[1], NULL, 10) : 1;
    if (runs < 1) {
        fprintf(stderr, "runs must be >= 1\n");
        return 2;
    }
    if (fread(input, 1, sizeof input, stdin) != sizeof input) {
        fprintf(stderr, "expected %d input bytes\n", TINYQ_INPUT_SIZE);
        return 2;
    }
    struct timespec start, end;
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (long i = 0; i < runs; ++i) {
        const int status = tinyq_run(input, output);
        if (status != 0) {
            fprintf(stderr, "tinyq_run failed in layer %d\n", -status - 1);
            return 1;
        }
    }
    clock_gettime(CLOCK_MONOTONIC, &end);
    const double ns = ((double)(end.tv_sec - start.tv_sec) * 1e9 + (double)(end.tv_nsec - start.tv_nsec)) / (double)runs;
    fwrite(output, 1, sizeof output, stdout);
    fprintf(stderr, "ns_per_inference %.0f\n", ns);
    return 0;
}
