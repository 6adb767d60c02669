/* STM32 (F4, F7, H7, L4): clock enables and UART pins from the board file,
 * a polled USART (register layout v1: F4; v2: F7, H7, L4, LPUART) and a
 * 32-bit counter (DWT cycle counter on silicon; TIM2 where the emulator
 * models no DWT). */
#include "tq_board.h"
#include "tq_port.h"

#define REG(addr) (*(volatile uint32_t *)(addr))

#if TQ_USART_VERSION == 1
#define USART_SR REG(TQ_UART_BASE + 0x00u)
#define USART_DR REG(TQ_UART_BASE + 0x04u)
#define USART_BRR REG(TQ_UART_BASE + 0x08u)
#define USART_CR1 REG(TQ_UART_BASE + 0x0Cu)
#define CR1_ENABLE ((1u << 13) | (1u << 3) | (1u << 2))   /* UE, TE, RE */
#define TX_READY() (USART_SR & (1u << 7))
#define RX_READY() (USART_SR & (1u << 5))
#define TX_WRITE(b) (USART_DR = (b))
#define RX_READ() (USART_DR)
#else
#define USART_CR1 REG(TQ_UART_BASE + 0x00u)
#define USART_BRR REG(TQ_UART_BASE + 0x0Cu)
#define USART_ISR REG(TQ_UART_BASE + 0x1Cu)
#define USART_RDR REG(TQ_UART_BASE + 0x24u)
#define USART_TDR REG(TQ_UART_BASE + 0x28u)
#define CR1_ENABLE ((1u << 0) | (1u << 3) | (1u << 2))    /* UE, TE, RE */
#define TX_READY() (USART_ISR & (1u << 7))
#define RX_READY() (USART_ISR & (1u << 5))
#define TX_WRITE(b) (USART_TDR = (b))
#define RX_READ() (USART_RDR)
#endif

/* {register address, bits to set}: clock enables and supply switches. */
static const uint32_t enables[][2] = TQ_ENABLE_BITS;
/* {GPIO port base, pin, alternate function}: the UART's TX and RX. */
static const uint32_t uart_pins[][3] = TQ_UART_PINS;

static void configure_pin(uint32_t port, uint32_t pin, uint32_t af) {
    REG(port + 0x00u) = (REG(port + 0x00u) & ~(3u << (2 * pin))) | (2u << (2 * pin));   /* MODER: AF */
    REG(port + 0x08u) |= 3u << (2 * pin);                                                 /* OSPEEDR */
    const uint32_t afr = port + (pin < 8 ? 0x20u : 0x24u), shift = 4 * (pin % 8);
    REG(afr) = (REG(afr) & ~(0xFu << shift)) | (af << shift);
}

void tq_port_init(void) {
    for (unsigned i = 0; i < sizeof enables / sizeof enables[0]; ++i) {
        REG(enables[i][0]) |= enables[i][1];
        (void)REG(enables[i][0]);   /* read back: the clock is running before first use */
    }
    for (unsigned i = 0; i < sizeof uart_pins / sizeof uart_pins[0]; ++i)
        configure_pin(uart_pins[i][0], uart_pins[i][1], uart_pins[i][2]);
    USART_BRR = TQ_UART_BRR;
    USART_CR1 = CR1_ENABLE;
#if TQ_COUNTER_DWT
    REG(0xE000EDFCu) |= 1u << 24;          /* DEMCR.TRCENA */
    REG(0xE0001FB0u) = 0xC5ACCE55u;        /* DWT lock access (Cortex-M7) */
    REG(0xE0001004u) = 0;                  /* CYCCNT */
    REG(0xE0001000u) |= 1u;                /* CYCCNTENA */
#else
    REG(TQ_COUNTER_BASE + 0x28u) = 0;              /* TIM PSC */
    REG(TQ_COUNTER_BASE + 0x2Cu) = 0xFFFFFFFFu;    /* TIM ARR */
    REG(TQ_COUNTER_BASE + 0x00u) = 1u;             /* TIM CR1.CEN */
#endif
}

void tq_port_putc(uint8_t byte) {
    while (!TX_READY()) {}
    TX_WRITE(byte);
}

int tq_port_getc(void) {
    while (!RX_READY()) {}
    return (int)(RX_READ() & 0xFFu);
}

uint32_t tq_port_counter(void) {
#if TQ_COUNTER_DWT
    return REG(0xE0001004u);
#else
    return REG(TQ_COUNTER_BASE + 0x24u);           /* TIM CNT */
#endif
}
