/* Vendor-free Cortex-M start-up: vector table, .data/.bss set-up, FPU and
 * (Cortex-M7) instruction cache enable, then main(). Faults report over
 * the UART and stop. */
#include <stdint.h>
#include <string.h>

#include "tq_board.h"
#include "tq_port.h"

extern uint32_t _sidata, _sdata, _edata, _sbss, _ebss, _estack;
int main(void);

#define SCB_CPACR (*(volatile uint32_t *)0xE000ED88u)
#define SCB_CCR (*(volatile uint32_t *)0xE000ED14u)
#define SCB_ICIALLU (*(volatile uint32_t *)0xE000EF50u)

void tq_reset_handler(void) {
    memcpy(&_sdata, &_sidata, (size_t)((uint8_t *)&_edata - (uint8_t *)&_sdata));
    memset(&_sbss, 0, (size_t)((uint8_t *)&_ebss - (uint8_t *)&_sbss));
#if TQ_HAS_FPU
    SCB_CPACR |= 0xFu << 20;        /* full access to CP10 and CP11 */
    __asm volatile("dsb\n isb" ::: "memory");
#endif
#if TQ_HAS_ICACHE
    __asm volatile("dsb\n isb" ::: "memory");
    SCB_ICIALLU = 0;
    __asm volatile("dsb\n isb" ::: "memory");
    SCB_CCR |= 1u << 17;            /* IC: instruction cache on */
    __asm volatile("dsb\n isb" ::: "memory");
#endif
    main();
    for (;;) {}
}

static void fault(const char *what) {
    while (*what) tq_port_putc((uint8_t)*what++);
    for (;;) {}
}

void tq_nmi_handler(void) { fault("e-[fault: NMI]\r\n"); }
void tq_hardfault_handler(void) { fault("e-[fault: HardFault]\r\n"); }
void tq_memmanage_handler(void) { fault("e-[fault: MemManage]\r\n"); }
void tq_busfault_handler(void) { fault("e-[fault: BusFault]\r\n"); }
void tq_usagefault_handler(void) { fault("e-[fault: UsageFault]\r\n"); }
void tq_unused_handler(void) { fault("e-[fault: unexpected interrupt]\r\n"); }

__attribute__((section(".isr_vector"), used)) void (*const tq_vectors[16])(void) = {
    (void (*)(void))&_estack, tq_reset_handler, tq_nmi_handler, tq_hardfault_handler,
    tq_memmanage_handler, tq_busfault_handler, tq_usagefault_handler, 0, 0, 0, 0,
    tq_unused_handler, tq_unused_handler, 0, tq_unused_handler, tq_unused_handler,
};
