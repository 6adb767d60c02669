/* Batch entry point of the host library tinyq's evaluator loads: runs the model over COUNT
 * samples packed back to back (TINYQ_INPUT_SIZE bytes in, TINYQ_OUTPUT_SIZE bytes out each).
 * With FRESH_STATE, every sample starts from the model's initial state, as the numpy reference
 * runs a batch of independent samples. Returns 0 or tinyq_run's status of the first failure. */
#include <stddef.h>

#include "tinyq_model.h"

int tinyq_run_batch(const unsigned char *input, unsigned char *output, long count, int fresh_state) {
    for (long i = 0; i < count; ++i) {
        if (fresh_state) tinyq_reset();
        const int status = tinyq_run(input + (size_t)i * TINYQ_INPUT_SIZE, output + (size_t)i * TINYQ_OUTPUT_SIZE);
        if (status != 0) return status;
    }
    return 0;
}
