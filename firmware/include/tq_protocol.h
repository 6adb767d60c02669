/* The tinyq serial protocol (docs/serial-protocol.md): frames of
 *   0xA5 | type | seq | length (u16 LE) | payload | CRC-32 (u32 LE, over type..payload)
 * Requests carry a command type; replies echo seq with type | 0x80, or
 * TQ_MSG_ERROR with a code byte and a text. */
#ifndef TQ_PROTOCOL_H
#define TQ_PROTOCOL_H

#include <stdint.h>

#define TQ_FRAME_START 0xA5u
#define TQ_MAX_PAYLOAD 512u

enum {
    TQ_CMD_INFO = 0x01,     /* -> text "key=value" lines */
    TQ_CMD_LOAD = 0x02,     /* u32 offset, bytes -> () */
    TQ_CMD_INVOKE = 0x03,   /* u32 runs -> i32 status, u32 runs, u32 total lo, u32 total hi, u32 last */
    TQ_CMD_READ = 0x04,     /* u32 offset, u16 length -> bytes */
    TQ_CMD_PROFILE = 0x05,  /* u16 first layer -> i32 status, u16 first, u32 ticks per layer... */
    TQ_CMD_RESET = 0x06,    /* () -> (): a streaming build starts a new sequence */
    TQ_REPLY = 0x80,
    TQ_MSG_ERROR = 0x7F,
};

enum { TQ_ERR_CRC = 1, TQ_ERR_LENGTH = 2, TQ_ERR_COMMAND = 3, TQ_ERR_RANGE = 4, TQ_ERR_MODEL = 5 };

uint32_t tq_crc32(uint32_t crc, const uint8_t *data, uint32_t length);
void tq_send_frame(uint8_t type, uint8_t seq, const uint8_t *payload, uint32_t length);
void tq_send_error(uint8_t seq, uint8_t code, const char *text);

/* Reads the rest of a frame after its start byte. Returns 1 and fills the
 * arguments for a valid frame; returns 0 after answering a bad one. */
int tq_read_frame(uint8_t *type, uint8_t *seq, uint8_t *payload, uint32_t *length);

#endif /* TQ_PROTOCOL_H */
