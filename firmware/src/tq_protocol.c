/* Framing and CRC of the tinyq serial protocol. */
#include "tq_protocol.h"

#include "tq_port.h"

uint32_t tq_crc32(uint32_t crc, const uint8_t *data, uint32_t length) {
    crc = ~crc;
    for (uint32_t i = 0; i < length; ++i) {
        crc ^= data[i];
        for (int bit = 0; bit < 8; ++bit) crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
    }
    return ~crc;
}

static void put_u32(uint32_t value) {
    for (int i = 0; i < 4; ++i) tq_port_putc((uint8_t)(value >> (8 * i)));
}

void tq_send_frame(uint8_t type, uint8_t seq, const uint8_t *payload, uint32_t length) {
    const uint8_t header[4] = {type, seq, (uint8_t)length, (uint8_t)(length >> 8)};
    uint32_t crc = tq_crc32(0, header, 4);
    crc = tq_crc32(crc, payload, length);
    tq_port_putc(TQ_FRAME_START);
    for (int i = 0; i < 4; ++i) tq_port_putc(header[i]);
    for (uint32_t i = 0; i < length; ++i) tq_port_putc(payload[i]);
    put_u32(crc);
}

void tq_send_error(uint8_t seq, uint8_t code, const char *text) {
    uint8_t payload[64];
    uint32_t n = 1;
    payload[0] = code;
    while (*text && n < sizeof payload) payload[n++] = (uint8_t)*text++;
    tq_send_frame(TQ_MSG_ERROR, seq, payload, n);
}

int tq_read_frame(uint8_t *type, uint8_t *seq, uint8_t *payload, uint32_t *length) {
    uint8_t header[4];
    for (int i = 0; i < 4; ++i) header[i] = (uint8_t)tq_port_getc();
    *type = header[0];
    *seq = header[1];
    *length = (uint32_t)header[2] | ((uint32_t)header[3] << 8);
    if (*length > TQ_MAX_PAYLOAD) {   /* never read past the buffer: drop and resync */
        tq_send_error(*seq, TQ_ERR_LENGTH, "payload too long");
        return 0;
    }
    for (uint32_t i = 0; i < *length; ++i) payload[i] = (uint8_t)tq_port_getc();
    uint32_t crc = 0;
    for (int i = 0; i < 4; ++i) crc |= (uint32_t)tq_port_getc() << (8 * i);
    if (crc != tq_crc32(tq_crc32(0, header, 4), payload, *length)) {
        tq_send_error(*seq, TQ_ERR_CRC, "bad crc");
        return 0;
    }
    return 1;
}
