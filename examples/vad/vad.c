/* vad.c - an always-on voice-activity detector as a product would run it:
 * the model (examples/vad/vad.onnx, compiled ahead of time by moss into a
 * bundle) runs through libmossrt one chunk of audio at a time, with the
 * LSTM's state kept in the session from one chunk to the next
 * (mossrt_session_keep_state), and prints the stretches of speech it hears.
 *
 *   vad MODEL.moss AUDIO.wav [RATE]
 *
 * AUDIO.wav: 16-bit PCM, mono, any sample rate (resampled linearly to
 * RATE, default 16000: the rate the model was compiled for with
 * --constant sr=...). The chunk size is the model's input's. A stretch
 * starts at the first chunk whose probability reaches 0.5 and ends when it
 * stays under 0.35 for 100 ms; stretches shorter than 100 ms are dropped.
 * Prints "speech S.SS s - E.EE s" per stretch, then the median time of one
 * chunk. Exit status 0, or 1 with a message on standard error. */
#define _POSIX_C_SOURCE 199309L
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mossrt.h"

static uint32_t le32(const unsigned char *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* The samples of a 16-bit PCM mono WAV file, as floats in [-1, 1). */
static float *read_wav(const char *path, long *n, long *rate) {
  FILE *f = fopen(path, "rb");
  unsigned char h[12], ch[8], fmt[16];
  float *out = NULL;
  int have_fmt = 0;
  if (!f) return NULL;
  if (fread(h, 1, 12, f) != 12 || memcmp(h, "RIFF", 4) || memcmp(h + 8, "WAVE", 4)) goto done;
  while (fread(ch, 1, 8, f) == 8) {
    uint32_t size = le32(ch + 4);
    if (!memcmp(ch, "fmt ", 4) && size >= 16) {
      if (fread(fmt, 1, 16, f) != 16) goto done;
      if ((fmt[0] | fmt[1] << 8) != 1 || (fmt[2] | fmt[3] << 8) != 1 || (fmt[14] | fmt[15] << 8) != 16) {
        fprintf(stderr, "%s: not 16-bit PCM mono\n", path);
        goto done;
      }
      *rate = (long)le32(fmt + 4);
      have_fmt = 1;
      if (fseek(f, (long)(size - 16 + (size & 1)), SEEK_CUR)) goto done;
    } else if (!memcmp(ch, "data", 4) && have_fmt) {
      long i, count = (long)(size / 2);
      unsigned char *raw = malloc((size_t)size + 1);
      out = malloc(sizeof *out * (size_t)(count + 1));
      if (!raw || !out || fread(raw, 1, size, f) != size) {
        free(raw);
        free(out);
        out = NULL;
        goto done;
      }
      for (i = 0; i < count; i++) out[i] = (float)(int16_t)(raw[2 * i] | raw[2 * i + 1] << 8) / 32768.0f;
      free(raw);
      *n = count;
      goto done;
    } else if (fseek(f, (long)(size + (size & 1)), SEEK_CUR)) {
      goto done;
    }
  }
done:
  fclose(f);
  return out;
}

/* |a| (|n| samples at |from| Hz) at |to| Hz, by linear interpolation. */
static float *resample(const float *a, long n, long from, long to, long *out_n) {
  long m = (long)((double)n * (double)to / (double)from), i;
  float *r = malloc(sizeof *r * (size_t)(m + 1));
  if (!r) return NULL;
  for (i = 0; i < m; i++) {
    double t = (double)i * (double)from / (double)to;
    long k = (long)t;
    double w = t - (double)k;
    r[i] = k + 1 < n ? (float)((1 - w) * a[k] + w * a[k + 1]) : a[n - 1];
  }
  *out_n = m;
  return r;
}

static int find(const mossrt_bundle *b, int input, const char *name) {
  uint32_t i, n = input ? mossrt_input_count(b) : mossrt_output_count(b);
  mossrt_tensor_info t;
  for (i = 0; i < n; i++)
    if ((input ? mossrt_input_info(b, i, &t) : mossrt_output_info(b, i, &t)) == MOSSRT_OK && !strcmp(t.name, name))
      return (int)i;
  return -1;
}

static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

int main(int argc, char **argv) {
  mossrt_bundle *b = NULL;
  mossrt_session *s = NULL;
  mossrt_error err;
  mossrt_tensor_info ti;
  float *wav, *audio, prob;
  double *times = NULL, hop;
  long n = 0, rate = 0, na, chunk, c, nchunks, rate_to = argc > 3 ? atol(argv[3]) : 16000;
  long start = -1, quiet = 0, min_chunks;
  int in, st, pr, stn, rc = 1;
  const void *ins[2];
  void *outs[2];
  if (argc < 3 || rate_to <= 0) {
    fprintf(stderr, "usage: %s MODEL.moss AUDIO.wav [RATE]\n", argv[0]);
    return 2;
  }
  if (!(wav = read_wav(argv[2], &n, &rate)) || n == 0 || rate <= 0) {
    fprintf(stderr, "%s: cannot read a 16-bit PCM mono WAV file\n", argv[2]);
    return 1;
  }
  audio = resample(wav, n, rate, rate_to, &na);
  free(wav);
  if (!audio) return 1;
  if (mossrt_open_file(argv[1], &b, &err) != MOSSRT_OK || mossrt_session_create(b, NULL, 0, &s, &err) != MOSSRT_OK) {
    fprintf(stderr, "%s\n", err.text);
    goto done;
  }
  in = find(b, 1, "input");
  st = find(b, 1, "state");
  pr = find(b, 0, "prob");
  stn = find(b, 0, "stateN");
  if (in < 0 || st < 0 || pr < 0 || stn < 0 || mossrt_input_count(b) != 2) {
    fprintf(stderr, "%s: expected inputs 'input' and 'state' (sr frozen with --constant) and outputs 'prob' "
            "and 'stateN'\n", argv[1]);
    goto done;
  }
  /* the LSTM's state stays in the session: each chunk's stateN is the next chunk's state */
  if (mossrt_session_keep_state(s, (uint32_t)st, (uint32_t)stn, &err) != MOSSRT_OK) {
    fprintf(stderr, "%s\n", err.text);
    goto done;
  }
  mossrt_input_info(b, (uint32_t)in, &ti);
  chunk = ti.rank == 2 && ti.dims[0] == 1 ? (long)ti.dims[1] : -1;
  if (chunk <= 0) {
    fprintf(stderr, "%s: the input must be 1xN (compile with --input-shape input=1x512)\n", argv[1]);
    goto done;
  }
  hop = (double)chunk / (double)rate_to;
  min_chunks = (long)(0.1 / hop + 0.999);
  nchunks = na / chunk;
  times = malloc(sizeof *times * (size_t)(nchunks + 1));
  if (!times) goto done;
  for (c = 0; c < nchunks; c++) {
    double t0 = now();
    ins[in] = audio + c * chunk;
    ins[st] = NULL; /* kept by the session */
    outs[pr] = &prob;
    outs[stn] = NULL;
    if (mossrt_run(s, ins, outs, &err) != MOSSRT_OK) {
      fprintf(stderr, "%s\n", err.text);
      goto done;
    }
    times[c] = now() - t0;
    if (start < 0 && prob >= 0.5f) {
      start = c;
      quiet = 0;
    } else if (start >= 0) {
      quiet = prob < 0.35f ? quiet + 1 : 0;
      if (quiet >= min_chunks) {
        if (c - quiet + 1 - start >= min_chunks)
          printf("speech %.2f s - %.2f s\n", (double)start * hop, (double)(c - quiet + 1) * hop);
        start = -1;
      }
    }
  }
  if (start >= 0 && nchunks - start >= min_chunks)
    printf("speech %.2f s - %.2f s\n", (double)start * hop, (double)nchunks * hop);
  if (nchunks > 0) {
    qsort(times, (size_t)nchunks, sizeof *times, cmp);
    printf("%ld chunks of %ld samples (%.0f ms), median %.1f us per chunk\n", nchunks, chunk, hop * 1e3,
           times[nchunks / 2] * 1e6);
  }
  rc = 0;
done:
  free(times);
  free(audio);
  mossrt_session_destroy(s);
  mossrt_close(b);
  return rc;
}
