/* semihost.h - the two Arm semihosting calls the firmware needs: text out and exit.
 * Under `qemu-system-arm -semihosting-config enable=on,target=native` they reach the
 * host's standard output and QEMU's exit status. */
#ifndef SEMIHOST_H
#define SEMIHOST_H

/* Writes the NUL-terminated |s| to the host console (SYS_WRITE0). */
void sh_puts(const char *s);

/* Ends the program; QEMU exits with |status| (SYS_EXIT_EXTENDED). */
void sh_exit(int status) __attribute__((noreturn));

#endif
