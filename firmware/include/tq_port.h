/* What a board port provides to the firmware: start-up, a byte UART and a
 * free-running cycle counter. One implementation per family in port/. */
#ifndef TQ_PORT_H
#define TQ_PORT_H

#include <stdint.h>

void tq_port_init(void);                 /* clocks, UART, counter */
void tq_port_putc(uint8_t byte);          /* blocking */
int tq_port_getc(void);                   /* blocking; returns 0..255 */
uint32_t tq_port_counter(void);           /* 32 bits, counts up, wraps */

/* Elapsed counter ticks between two readings, across one wrap. */
static inline uint32_t tq_port_elapsed(uint32_t start, uint32_t end) { return end - start; }

#endif /* TQ_PORT_H */
