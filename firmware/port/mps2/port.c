/* Arm MPS2 (FPGA images AN386, AN500; QEMU models them): CMSDK APB UART
 * polled, CMSDK APB timer as a 32-bit free-running counter at PCLK. */
#include "tq_board.h"
#include "tq_port.h"

#define REG(addr) (*(volatile uint32_t *)(addr))
#define UART_DATA REG(TQ_UART_BASE + 0x00u)
#define UART_STATE REG(TQ_UART_BASE + 0x04u)      /* bit 0: TX full, bit 1: RX full */
#define UART_CTRL REG(TQ_UART_BASE + 0x08u)       /* bit 0: TX enable, bit 1: RX enable */
#define UART_BAUDDIV REG(TQ_UART_BASE + 0x10u)
#define TIMER_CTRL REG(TQ_COUNTER_BASE + 0x00u)
#define TIMER_VALUE REG(TQ_COUNTER_BASE + 0x04u)  /* counts down */
#define TIMER_RELOAD REG(TQ_COUNTER_BASE + 0x08u)

void tq_port_init(void) {
    UART_BAUDDIV = TQ_UART_CLOCK_HZ / TQ_BAUD;
    UART_CTRL = 3u;
    TIMER_CTRL = 0u;
    TIMER_RELOAD = 0xFFFFFFFFu;
    TIMER_VALUE = 0xFFFFFFFFu;
    TIMER_CTRL = 1u;
}

void tq_port_putc(uint8_t byte) {
    while (UART_STATE & 1u) {}
    UART_DATA = byte;
}

int tq_port_getc(void) {
    while (!(UART_STATE & 2u)) {}
    return (int)(UART_DATA & 0xFFu);
}

uint32_t tq_port_counter(void) { return ~TIMER_VALUE; }
