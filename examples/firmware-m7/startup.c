/* startup.c - what runs before main() on a bare Cortex-M7: the vector table, the reset
 * handler (FPU on, .data copied from flash, .bss zeroed), a fault handler that reports
 * through semihosting instead of hanging, and the semihosting calls themselves. The
 * symbols come from mps2-an500.ld. */
#include <stdint.h>

#include "semihost.h"

extern uint32_t __data_start[], __data_end[], __data_load[], __bss_start[], __bss_end[];
extern uint32_t __stack_top[];
int main(void);
void reset_handler(void);
static void fault_handler(void);

/* Semihosting operations (Arm "Semihosting for AArch32 and AArch64", version 2.0). */
enum { SYS_WRITE0 = 0x04, SYS_EXIT = 0x18, SYS_EXIT_EXTENDED = 0x20 };
#define ADP_STOPPED_APPLICATION_EXIT 0x20026

/* M-profile semihosting is a BKPT 0xAB with the operation in r0 and its argument in r1. */
static int semihost(int op, const void *arg) {
  register int r0 __asm__("r0") = op;
  register const void *r1 __asm__("r1") = arg;
  __asm__ volatile("bkpt 0xab" : "+r"(r0) : "r"(r1) : "memory");
  return r0;
}

void sh_puts(const char *s) { semihost(SYS_WRITE0, s); }

void sh_exit(int status) {
  /* The AArch32 SYS_EXIT carries no status; the extended call does. If the host lacks
   * it, fall back to SYS_EXIT, where only an application exit means success. */
  const uint32_t block[2] = {ADP_STOPPED_APPLICATION_EXIT, (uint32_t)status};
  semihost(SYS_EXIT_EXTENDED, block);
  semihost(SYS_EXIT, (const void *)(uintptr_t)(status == 0 ? ADP_STOPPED_APPLICATION_EXIT : 0));
  for (;;) {
  }
}

/* The first 16 entries (the core's exceptions); the board's interrupts stay unused. Entry 0
 * is the initial stack pointer, data rather than code: a union keeps that in ISO C. */
typedef union vector {
  void *sp;
  void (*handler)(void);
} vector;
__attribute__((section(".vectors"), used)) static const vector vectors[16] = {
    {.sp = __stack_top},        {.handler = reset_handler},
    {.handler = fault_handler}, /* NMI */
    {.handler = fault_handler}, /* HardFault */
    {.handler = fault_handler}, /* MemManage */
    {.handler = fault_handler}, /* BusFault */
    {.handler = fault_handler}, /* UsageFault */
};

void reset_handler(void) {
  /* Full access to CP10/CP11 (the FPU) before any floating-point instruction: the code
   * is built for the hard-float ABI (CPACR, Armv7-M Architecture Reference Manual). */
  *(volatile uint32_t *)0xE000ED88u |= 0xFu << 20;
  __asm__ volatile("dsb\n\tisb" ::: "memory");
  for (uint32_t *src = __data_load, *dst = __data_start; dst < __data_end;)
    *dst++ = *src++;
  for (uint32_t *dst = __bss_start; dst < __bss_end;)
    *dst++ = 0;
  sh_exit(main());
}

static void fault_handler(void) {
  sh_puts("firmware-m7: fault\n");
  sh_exit(2);
}
