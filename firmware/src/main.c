/* tinyq firmware: runs the generated model on request from the host.
 *
 * Two dialects share the UART: tinyq's framed binary protocol (frames start
 * with 0xA5, see tq_protocol.h) and the MLPerf Tiny / EEMBC runner's ASCII
 * commands ending in '%' (name, profile, timestamp, db load N, db <hex>,
 * infer N W, results). */
#include <string.h>

#include "tinyq_model.h"
#include "tq_board.h"
#include "tq_port.h"
#include "tq_protocol.h"

static uint8_t input_stage[TINYQ_INPUT_SIZE];    /* what the host loaded */
static uint8_t output_stage[TINYQ_OUTPUT_SIZE];  /* outputs of the last run */
static uint8_t payload[TQ_MAX_PAYLOAD];
static uint32_t layer_ticks[TINYQ_NUM_LAYERS];
static uint32_t layer_start;
/* A streaming build consumes each frame once: the input bytes loaded contiguously from 0 since
 * the last INVOKE. A frame loaded short is refused, and the state it would have advanced kept. */
static uint32_t frame_fill;
volatile uint8_t tq_profiling;

/* The emulator's instruction-counting plugin records a count each time this
 * runs: around every inference, and around every layer when profiling. */
__attribute__((noinline)) void tq_mark(void) { __asm volatile("" ::: "memory"); }

void tq_layer_mark(int index, int end) {
    tq_mark();
    const uint32_t now = tq_port_counter();
    if (!end) layer_start = now;
    else layer_ticks[index] = tq_port_elapsed(layer_start, now);
}

/* One inference from the staged input; returns the model status. */
static int run_once(uint32_t *ticks) {
    const uint8_t *in = input_stage;
    for (int i = 0; i < TINYQ_NUM_INPUTS; ++i) {
        static const uint32_t sizes[] = TINYQ_INPUT_SIZES;
        memcpy(tinyq_input(i), in, sizes[i]);
        in += sizes[i];
    }
    tq_mark();
    const uint32_t start = tq_port_counter();
    const int status = tinyq_invoke();
    const uint32_t end = tq_port_counter();
    tq_mark();
    *ticks = tq_port_elapsed(start, end);
    uint8_t *out = output_stage;
    for (int i = 0; i < TINYQ_NUM_OUTPUTS; ++i) {
        static const uint32_t sizes[] = TINYQ_OUTPUT_SIZES;
        memcpy(out, tinyq_output(i), sizes[i]);
        out += sizes[i];
    }
    return status;
}

static uint32_t get_u32(const uint8_t *p) {
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

static void put_u32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; ++i) p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t append(uint8_t *dst, uint32_t n, const char *text) {
    while (*text && n < TQ_MAX_PAYLOAD) dst[n++] = (uint8_t)*text++;
    return n;
}

static uint32_t append_u32(uint8_t *dst, uint32_t n, uint32_t value) {
    char digits[11];
    int k = 10;
    digits[k] = 0;
    do { digits[--k] = (char)('0' + value % 10); value /= 10; } while (value);
    return append(dst, n, digits + k);
}

static void handle_frame(void) {
    uint8_t type, seq;
    uint32_t length;
    if (!tq_read_frame(&type, &seq, payload, &length)) return;
    uint8_t reply[TQ_MAX_PAYLOAD];
    uint32_t n = 0;
    switch (type) {
    case TQ_CMD_INFO:
        n = append(reply, n, "board=" TQ_BOARD_NAME "\nmodel=" TINYQ_MODEL_HASH "\ncounter=" TQ_COUNTER_NAME);
        n = append(reply, n, "\narena="), n = append_u32(reply, n, TINYQ_ARENA_SIZE);
        n = append(reply, n, "\ninput="), n = append_u32(reply, n, TINYQ_INPUT_SIZE);
        n = append(reply, n, "\noutput="), n = append_u32(reply, n, TINYQ_OUTPUT_SIZE);
        n = append(reply, n, "\nlayers="), n = append_u32(reply, n, TINYQ_NUM_LAYERS);
        n = append(reply, n, "\nclock="), n = append_u32(reply, n, TQ_CLOCK_HZ);
        n = append(reply, n, "\ncounter_hz="), n = append_u32(reply, n, TQ_COUNTER_HZ);
        n = append(reply, n, "\nprotocol=1\n");
        break;
    case TQ_CMD_LOAD: {
        if (length < 4) { tq_send_error(seq, TQ_ERR_LENGTH, "LOAD needs an offset"); return; }
        const uint32_t offset = get_u32(payload), count = length - 4;
        if (offset > TINYQ_INPUT_SIZE || count > TINYQ_INPUT_SIZE - offset) {
            tq_send_error(seq, TQ_ERR_RANGE, "LOAD outside the input");
            return;
        }
        memcpy(input_stage + offset, payload + 4, count);
        if (offset <= frame_fill && offset + count > frame_fill) frame_fill = offset + count;
        break;
    }
    case TQ_CMD_INVOKE: {
        const uint32_t runs = length == 4 ? get_u32(payload) : 0;
        if (runs == 0 || runs > 100000) { tq_send_error(seq, TQ_ERR_RANGE, "INVOKE needs 1..100000 runs"); return; }
        if (TINYQ_STREAMING && frame_fill != TINYQ_INPUT_SIZE) {
            tq_send_error(seq, TQ_ERR_RANGE, "INVOKE of a streaming build needs a whole new frame");
            return;
        }
        frame_fill = 0;
        uint64_t total = 0;
        uint32_t ticks = 0;
        int status = 0;
        tq_profiling = 0;
        for (uint32_t r = 0; r < runs && status == 0; ++r) {
            status = run_once(&ticks);
            total += ticks;
        }
        put_u32(reply, (uint32_t)status), put_u32(reply + 4, runs);
        put_u32(reply + 8, (uint32_t)total), put_u32(reply + 12, (uint32_t)(total >> 32));
        put_u32(reply + 16, ticks);
        n = 20;
        break;
    }
    case TQ_CMD_READ: {
        const uint32_t offset = length == 6 ? get_u32(payload) : 0xFFFFFFFFu;
        const uint32_t count = length == 6 ? ((uint32_t)payload[4] | ((uint32_t)payload[5] << 8)) : 0;
        if (offset > TINYQ_OUTPUT_SIZE || count > TINYQ_OUTPUT_SIZE - offset || count > TQ_MAX_PAYLOAD) {
            tq_send_error(seq, TQ_ERR_RANGE, "READ outside the output");
            return;
        }
        memcpy(reply, output_stage + offset, count);
        n = count;
        break;
    }
    case TQ_CMD_PROFILE: {
        const uint32_t first = length == 2 ? ((uint32_t)payload[0] | ((uint32_t)payload[1] << 8)) : 0xFFFFu;
        if (first >= TINYQ_NUM_LAYERS) { tq_send_error(seq, TQ_ERR_RANGE, "PROFILE layer out of range"); return; }
        uint32_t ticks;
        int status = 0;
        if (first == 0) {
            tq_profiling = 1;
            status = run_once(&ticks);
            tq_profiling = 0;
        }
        put_u32(reply, (uint32_t)status);
        reply[4] = (uint8_t)first, reply[5] = (uint8_t)(first >> 8);
        n = 6;
        for (uint32_t i = first; i < TINYQ_NUM_LAYERS && n + 4 <= TQ_MAX_PAYLOAD; ++i, n += 4)
            put_u32(reply + n, layer_ticks[i]);
        break;
    }
    case TQ_CMD_RESET:
        tinyq_reset();
        frame_fill = 0;
        break;
    default:
        tq_send_error(seq, TQ_ERR_COMMAND, "unknown command");
        return;
    }
    tq_send_frame(type | TQ_REPLY, seq, reply, n);
}

/* --- MLPerf Tiny / EEMBC runner dialect ------------------------------------ */

static char line[1100];
static uint32_t line_length, db_expected, db_loaded;
static uint64_t clock_ticks;
static uint32_t clock_last;

static void say(const char *text) { while (*text) tq_port_putc((uint8_t)*text++); }

static void say_u32(uint32_t value) {
    uint8_t digits[12];
    const uint32_t n = append_u32(digits, 0, value);
    for (uint32_t i = 0; i < n; ++i) tq_port_putc(digits[i]);
}

static uint32_t timestamp_us(void) {
    const uint32_t now = tq_port_counter();
    clock_ticks += tq_port_elapsed(clock_last, now);
    clock_last = now;
    return (uint32_t)(clock_ticks * 1000000u / TQ_COUNTER_HZ);
}

static void lap(void) { say("m-lap-us-"), say_u32(timestamp_us()), say("\r\n"); }

static int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static uint32_t parse_u32(const char **p) {
    uint32_t v = 0;
    while (**p == ' ') ++*p;
    while (**p >= '0' && **p <= '9') v = v * 10 + (uint32_t)(*(*p)++ - '0');
    return v;
}

static void eembc_results(void) {
    say("m-results-[");
    for (uint32_t i = 0; i < TINYQ_OUTPUT_SIZE; ++i) {
        if (i) say(",");
        const int8_t v = (int8_t)output_stage[i];
        if (v < 0) say("-");
        say_u32((uint32_t)(v < 0 ? -v : v));
    }
    say("]\r\n");
}

static void eembc_command(void) {
    line[line_length] = 0;
    const char *p = line;
    if (strcmp(line, "name") == 0) {
        say("m-name-dut-[tinyq " TQ_BOARD_NAME "]\r\n");
    } else if (strcmp(line, "profile") == 0) {
        say("m-profile-[tinyq model " TINYQ_MODEL_HASH "]\r\nm-model-[" TINYQ_MODEL_HASH "]\r\n");
    } else if (strcmp(line, "timestamp") == 0) {
        lap();
    } else if (strncmp(line, "db load ", 8) == 0) {
        p += 8;
        db_expected = parse_u32(&p);
        db_loaded = 0;
        if (db_expected > TINYQ_INPUT_SIZE) { say("m-[Too many bytes]\r\n"); db_expected = 0; }
        else say("m-[Expecting "), say_u32(db_expected), say(" bytes]\r\n");
    } else if (strncmp(line, "db ", 3) == 0) {
        for (p += 3; p[0] && p[1] && db_loaded < db_expected; p += 2) {
            const int hi = hex_value(p[0]), lo = hex_value(p[1]);
            if (hi < 0 || lo < 0) { say("m-[Bad hex]\r\n"); break; }
            input_stage[db_loaded++] = (uint8_t)(hi * 16 + lo);
        }
        if (db_expected && db_loaded == db_expected) say("m-load-done\r\n");
    } else if (strncmp(line, "infer", 5) == 0) {
        p += 5;
        uint32_t runs = parse_u32(&p), warmups = parse_u32(&p), ticks;
        if (runs == 0) runs = 1;
        say("m-warmup-start-"), say_u32(warmups), say("\r\n");
        for (uint32_t i = 0; i < warmups; ++i) run_once(&ticks);
        say("m-warmup-done\r\nm-infer-start-"), say_u32(runs), say("\r\n");
        lap();
        for (uint32_t i = 0; i < runs; ++i) run_once(&ticks);
        lap();
        say("m-infer-done\r\n");
        eembc_results();
    } else if (strcmp(line, "results") == 0) {
        eembc_results();
    } else if (line_length) {
        say("e-[Unknown command: "), say(line), say("]\r\n");
    }
    say("m-ready\r\n");
    line_length = 0;
}

static void eembc_byte(uint8_t byte) {
    if (byte == '%') { eembc_command(); return; }
    if (byte == '\r' || byte == '\n') return;
    if (line_length + 1 >= sizeof line) { line_length = 0; say("e-[Command too long]\r\nm-ready\r\n"); return; }
    line[line_length++] = (char)byte;
}

int main(void) {
    tq_port_init();
    clock_last = tq_port_counter();
    say("m-init-done\r\nm-ready\r\n");
    for (;;) {
        const uint8_t byte = (uint8_t)tq_port_getc();
        if (byte == TQ_FRAME_START) handle_frame();
        else eembc_byte(byte);
    }
}
