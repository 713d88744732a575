/* What handing messages between two processes costs the hardware when each message also costs
 * work (docs/performance.md, "A backlog in the spill buffer"): a single-producer single-consumer
 * ring of 32-byte records in shared memory (the Channel's record format, as bench/floor.c's
 * ring), the producer pinned to the first core and busy for WORK_P ns before each record, the
 * consumer on the second busy for WORK_C ns after each; prints the stream's time per message
 * against the producer's work alone in one process.
 *
 * Build and run: cc -O2 -o /tmp/handoff scripts/stream_handoff_floor.c &&
 *   /tmp/handoff WORK_P WORK_C COUNT  (e.g. 400 300 500000: a tuple's dumps and loads) */
#define _GNU_SOURCE
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define RING_BYTES (1 << 20)
#define RECORD_BYTES 32

struct ring {
  _Alignas(64) _Atomic uint64_t tail;
  _Alignas(64) _Atomic uint64_t head;
  _Alignas(64) unsigned char data[RING_BYTES];
};

static double now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e9 + t.tv_nsec;
}

static volatile uint64_t sink;
static unsigned char scratch[4096];

/* Busy for `ns`, reading and writing a little private memory as pickling does. */
static void work(double ns) {
  if (ns <= 0) return;
  const double end = now_ns() + ns;
  uint64_t h = 0;
  while (now_ns() < end)
    for (int i = 0; i < 256; i += 8) h += scratch[i] * 31u, scratch[i + 1] = (unsigned char)h;
  sink = h;
}

static void pin(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  sched_setaffinity(0, sizeof set, &set);
}

int main(int argc, char **argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: %s WORK_P_NS WORK_C_NS COUNT\n", argv[0]);
    return 2;
  }
  const double work_p = atof(argv[1]), work_c = atof(argv[2]);
  const long count = atol(argv[3]);
  if (count < 1) return 2;
  struct ring *r =
      mmap(NULL, sizeof *r, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  int done[2];
  if (r == MAP_FAILED || pipe(done) != 0) return 1;
  const pid_t child = fork();
  if (child == 0) {
    pin(1);
    uint64_t head = 0;
    char out[16];
    for (long i = 0; i < count; ++i) {
      while (atomic_load_explicit(&r->tail, memory_order_acquire) == head) {
      }
      memcpy(out, r->data + head % RING_BYTES + 16, sizeof out);
      head += RECORD_BYTES;
      atomic_store_explicit(&r->head, head, memory_order_release);
      work(work_c);
    }
    _exit(write(done[1], "k", 1) == 1 ? 0 : 1);
  }
  pin(0);
  const double started = now_ns();
  uint64_t tail = 0;
  for (long i = 0; i < count; ++i) {
    work(work_p);
    while (tail + RECORD_BYTES - atomic_load_explicit(&r->head, memory_order_acquire) >
           RING_BYTES) {
    }
    unsigned char *record = r->data + tail % RING_BYTES;
    *(uint64_t *)record = 16;
    memcpy(record + 16, "mmmmmmmmmmmmmmmm", 16);
    tail += RECORD_BYTES;
    atomic_store_explicit(&r->tail, tail, memory_order_release);
  }
  char ack;
  if (read(done[0], &ack, 1) != 1) return 1;
  const double stream = (now_ns() - started) / count;
  waitpid(child, NULL, 0);
  const double alone_started = now_ns();
  for (long i = 0; i < count; ++i) work(work_p);
  const double alone = (now_ns() - alone_started) / count;
  printf("producer work %.0f ns, consumer work %.0f ns: stream %.1f ns per message, the producer's "
         "work alone %.1f ns: %.3fx\n",
         work_p, work_c, stream, alone, stream / alone);
  return 0;
}
