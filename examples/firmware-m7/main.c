/* main.c - the digits CNN on a Cortex-M7, compiled by moss (--emit c, target cortex-m7)
 * twice: float (digits_cnn) and int8 (digits_cnn_q, post-training quantized). Each runs
 * over the embedded test set with its arena a static buffer of the size its generated
 * header states, in its own section so the linker map shows it; the accuracy and every
 * prediction go out over semihosting, for check.py to compare with moss on the host. */
#include <stdint.h>

#include "digits_cnn.h"
#include "digits_cnn_q.h"
#include "digits_data.h"
#include "semihost.h"

/* The headers say 64-byte aligned; the section name gives each arena a map entry. */
#define ARENA(name, bytes) \
  static uint8_t name[bytes] __attribute__((aligned(64), section(".moss_arena." #name)))
ARENA(digits_cnn, DIGITS_CNN_ARENA_BYTES);
ARENA(digits_cnn_q, DIGITS_CNN_Q_ARENA_BYTES);

typedef int (*run_fn)(const float *in0, float *out0, void *arena);

/* One predicted digit per image, as characters, for the line check.py compares. */
static char predictions[DIGITS_N + 1];

static void put_uint(uint32_t v) {
  char buf[11], *p = buf + sizeof buf - 1;
  *p = 0;
  do
    *--p = (char)('0' + v % 10);
  while (v /= 10);
  sh_puts(p);
}

/* count / n with six decimals, rounded half up, as moss eval prints it ("%f"). */
static void put_ratio(uint32_t count, uint32_t n) {
  uint32_t micro = (uint32_t)(((uint64_t)count * 2000000u + n) / (2u * n));
  char frac[8] = ".000000";
  uint32_t f = micro % 1000000u;
  for (int i = 6; i >= 1; i--, f /= 10)
    frac[i] = (char)('0' + f % 10);
  put_uint(micro / 1000000u);
  sh_puts(frac);
}

/* Runs |run| on every image; prints "<label>: accuracy A (C/N)" and the predictions.
 * Returns 0, or 1 if the model returned an error. */
static int evaluate(const char *label, run_fn run, void *arena, unsigned out_numel) {
  uint32_t correct = 0;
  float logits[10];
  if (out_numel != 10) {
    sh_puts("firmware-m7: the model should give 10 logits\n");
    return 1;
  }
  for (uint32_t i = 0; i < DIGITS_N; i++) {
    if (run(digits_x[i], logits, arena) != 0) {
      sh_puts("firmware-m7: the model failed\n");
      return 1;
    }
    unsigned best = 0; /* argmax, the first on ties, like numpy */
    for (unsigned k = 1; k < 10; k++)
      if (logits[k] > logits[best]) best = k;
    predictions[i] = (char)('0' + best);
    correct += best == digits_y[i];
  }
  predictions[DIGITS_N] = 0;
  sh_puts(label);
  sh_puts(": accuracy ");
  put_ratio(correct, DIGITS_N);
  sh_puts(" (");
  put_uint(correct);
  sh_puts("/");
  put_uint(DIGITS_N);
  sh_puts(")\n");
  sh_puts(label);
  sh_puts(": predictions ");
  sh_puts(predictions);
  sh_puts("\n");
  return 0;
}

int main(void) {
  sh_puts("firmware-m7: digits CNN on ");
  put_uint(DIGITS_N);
  sh_puts(" test images, Cortex-M7\n");
  int rc = evaluate("float digits_cnn", digits_cnn_run, digits_cnn, DIGITS_CNN_OUT0_NUMEL);
  rc |= evaluate("int8 digits_cnn_q", digits_cnn_q_run, digits_cnn_q, DIGITS_CNN_Q_OUT0_NUMEL);
  return rc;
}
