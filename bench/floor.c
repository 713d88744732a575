/* The floor for each benchmark case: the same work done with raw system calls from C.
 * Usage: floor CASE SECONDS  ->  prints {"ns": <nanoseconds per operation>}.
 * POSIX names start with the run's $IPCXX_BENCH_PREFIX (or ipcxx_floor_<pid>_ when run by hand);
 * System V objects are IPC_PRIVATE and each is appended to $IPCXX_BENCH_RECORD ("kind 0 id") as
 * soon as it exists, so that bench/run.py can remove exactly these after a crash. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <mqueue.h>
#include <pthread.h>
#include <sched.h>
#include <semaphore.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/msg.h>
#include <sys/sem.h>
#include <sys/shm.h>
#include <linux/futex.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MIB (1 << 20)

typedef void (*step_fn)(long n);

static char name_a[256], name_b[256];
static sem_t *sem_a, *sem_b;
static mqd_t mq_a, mq_b;
static size_t message_size;
static char *buffer_in, *buffer_out, *mapped;
static int sysv_sem, sysv_queue;
static pthread_mutex_t *robust_mutex;
static pid_t child;
static int contenders;

static char prefix[160];

/* The run's name prefix (see OwnedObjects in bench/run.py), without the leading slash. */
static void set_prefix(void) {
  const char *given = getenv("IPCXX_BENCH_PREFIX");
  if (given && *given && strlen(given) < sizeof prefix - 32)
    snprintf(prefix, sizeof prefix, "%s", given);
  else
    snprintf(prefix, sizeof prefix, "ipcxx_floor_%d_", (int)getpid());
}
static void own_name(char *out, size_t size, const char *what) {
  snprintf(out, size, "/%s%d_%s", prefix, (int)getpid(), what);
}
/* One short O_APPEND write per line, as cases.py does. */
static void record_sysv(const char *kind, int id) {
  const char *path = getenv("IPCXX_BENCH_RECORD");
  if (!path || !*path) return;
  int fd = open(path, O_WRONLY | O_APPEND | O_CREAT, 0600);
  if (fd < 0) return;
  char line[64];
  int length = snprintf(line, sizeof line, "%s 0 %d\n", kind, id);
  if (write(fd, line, (size_t)length) != length) perror("record");
  close(fd);
}

static double now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static void die(const char *what) {
  perror(what);
  exit(1);
}

/* ---- posix semaphores ---- */
static void open_semaphores(unsigned initial) {
  own_name(name_a, sizeof name_a, "a");
  own_name(name_b, sizeof name_b, "b");
  sem_a = sem_open(name_a, O_CREAT | O_EXCL, 0600, initial);
  sem_b = sem_open(name_b, O_CREAT | O_EXCL, 0600, 0);
  if (sem_a == SEM_FAILED || sem_b == SEM_FAILED) die("sem_open");
}
static void close_semaphores(void) {
  sem_close(sem_a);
  sem_close(sem_b);
  sem_unlink(name_a);
  sem_unlink(name_b);
}
static void sem_wait_post(long n) {
  for (long i = 0; i < n; ++i) {
    sem_wait(sem_a);
    sem_post(sem_a);
  }
}
static void sem_trywait_post(long n) {
  for (long i = 0; i < n; ++i) {
    sem_trywait(sem_a);
    sem_post(sem_a);
  }
}
static void sem_trywait_busy(long n) {
  for (long i = 0; i < n; ++i)
    if (sem_trywait(sem_a) == 0) abort();
}
static void sem_ping(long n) {
  for (long i = 0; i < n / 2 + 1; ++i) {
    sem_post(sem_a);
    sem_wait(sem_b);
  }
}
static void sem_contend(long n) {
  long per_process = n / contenders > 0 ? n / contenders : 1;
  pid_t children[16];
  for (int c = 0; c < contenders - 1; ++c) {
    children[c] = fork();
    if (children[c] == 0) {
      for (long i = 0; i < per_process; ++i) {
        sem_wait(sem_a);
        sem_post(sem_a);
      }
      _exit(0);
    }
  }
  for (long i = 0; i < per_process; ++i) {
    sem_wait(sem_a);
    sem_post(sem_a);
  }
  for (int c = 0; c < contenders - 1; ++c) waitpid(children[c], NULL, 0);
}

/* ---- robust mutex: what ipcxx.RobustLock is made of ---- */
/* The attributes RobustMutex uses; in a MAP_SHARED mapping like its segment (anonymous: the
 * floor has no name to clean up, and a named segment's page is the same kind of memory). */
static void open_robust_mutex(void) {
  robust_mutex = mmap(NULL, sizeof *robust_mutex, PROT_READ | PROT_WRITE,
                      MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (robust_mutex == MAP_FAILED) die("mmap");
  pthread_mutexattr_t attributes;
  pthread_mutexattr_init(&attributes);
  pthread_mutexattr_setpshared(&attributes, PTHREAD_PROCESS_SHARED);
  pthread_mutexattr_setrobust(&attributes, PTHREAD_MUTEX_ROBUST);
  pthread_mutexattr_settype(&attributes, PTHREAD_MUTEX_ERRORCHECK);
  int error = pthread_mutex_init(robust_mutex, &attributes);
  pthread_mutexattr_destroy(&attributes);
  if (error) {
    errno = error;
    die("pthread_mutex_init");
  }
}
static void close_robust_mutex(void) {
  pthread_mutex_destroy(robust_mutex);
  munmap(robust_mutex, sizeof *robust_mutex);
}
static void robust_lock_unlock(long n) {
  for (long i = 0; i < n; ++i) {
    pthread_mutex_lock(robust_mutex);
    pthread_mutex_unlock(robust_mutex);
  }
}

/* ---- posix queues ---- */
static void open_queues(long max_messages, size_t size) {
  struct mq_attr attr = {0};
  attr.mq_maxmsg = max_messages;
  attr.mq_msgsize = (long)(size < 16 ? 16 : size);
  own_name(name_a, sizeof name_a, "qa");
  own_name(name_b, sizeof name_b, "qb");
  mq_a = mq_open(name_a, O_RDWR | O_CREAT | O_EXCL, 0600, &attr);
  /* The second queue only for ping-pong: two 8 x 64 KiB queues exceed RLIMIT_MSGQUEUE. */
  mq_b = max_messages == 2 ? mq_open(name_b, O_RDWR | O_CREAT | O_EXCL, 0600, &attr) : mq_a;
  if (mq_a < 0 || mq_b < 0) die("mq_open");
  message_size = size;
  buffer_in = calloc(1, attr.mq_msgsize);
  buffer_out = calloc(1, attr.mq_msgsize);
}
static void close_queues(void) {
  mq_close(mq_a);
  mq_unlink(name_a);
  if (mq_b != mq_a) {
    mq_close(mq_b);
    mq_unlink(name_b);
  }
}
static void mq_send_receive(long n) {
  unsigned priority;
  long capacity = message_size < 16 ? 16 : (long)message_size;
  for (long i = 0; i < n; ++i) {
    mq_send(mq_a, buffer_in, message_size, 0);
    mq_receive(mq_a, buffer_out, capacity, &priority);
  }
}
static void mq_ping(long n) {
  unsigned priority;
  for (long i = 0; i < n / 2 + 1; ++i) {
    mq_send(mq_a, "ping", 4, 0);
    mq_receive(mq_b, buffer_out, 16, &priority);
  }
}

/* ---- posix shared memory ---- */
static void shm_cycle(long n) {
  for (long i = 0; i < n; ++i) {
    int fd = shm_open(name_a, O_RDWR | O_CREAT | O_EXCL, 0600);
    if (fd < 0 || ftruncate(fd, MIB) != 0) die("shm");
    char *view = mmap(NULL, MIB, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    memcpy(view, buffer_in, MIB);
    munmap(view, MIB);
    close(fd);
    shm_unlink(name_a);
  }
}
static void copy_in_out(long n) {
  for (long i = 0; i < n; ++i) {
    memcpy(mapped, buffer_in, MIB);
    memcpy(buffer_out, mapped, MIB);
  }
}

/* ---- sysv ---- */
static void sysv_take_give(long n) {
  struct sembuf take = {0, -1, 0}, give = {0, 1, 0};
  for (long i = 0; i < n; ++i) {
    semop(sysv_sem, &take, 1);
    semop(sysv_sem, &give, 1);
  }
}
static void sysv_take_give_undo(long n) {
  struct sembuf take = {0, -1, SEM_UNDO}, give = {0, 1, SEM_UNDO};
  for (long i = 0; i < n; ++i) {
    semop(sysv_sem, &take, 1);
    semop(sysv_sem, &give, 1);
  }
}
/* Both members of a set of two in one semop each way, as SemaphoreSet.op. */
static void sysv_take_give_pair(long n) {
  struct sembuf take[2] = {{0, -1, 0}, {1, -1, 0}}, give[2] = {{0, 1, 0}, {1, 1, 0}};
  for (long i = 0; i < n; ++i) {
    semop(sysv_sem, take, 2);
    semop(sysv_sem, give, 2);
  }
}
static void sysv_nowait_busy(long n) {
  struct sembuf take = {0, -1, IPC_NOWAIT};
  for (long i = 0; i < n; ++i)
    if (semop(sysv_sem, &take, 1) == 0) abort();
}
static void sysv_msg_send_receive(long n) {
  for (long i = 0; i < n; ++i) {
    msgsnd(sysv_queue, buffer_in, message_size, 0);
    msgrcv(sysv_queue, buffer_out, message_size, 0, 0);
  }
}

/* ---- the Channel's floor: a single-producer single-consumer ring in shared memory ----
 * Records as the Channel's: a 16-byte header (here only the length) and the payload padded to
 * 16, in a 1 MiB ring of a MAP_SHARED mapping, head and tail on their own cache lines; a full or
 * empty ring is busy-polled. Fixed 32-byte records (16 B messages), so none straddles the end. */
static void pin_to(int index);
#define RING_BYTES MIB
#define RECORD_BYTES 32
#define RING_BATCH 64
struct ring {
  _Alignas(64) _Atomic uint64_t tail;
  _Alignas(64) _Atomic uint64_t head;
  _Alignas(64) _Atomic uint32_t futex_word; /* for the futex ping-pong */
  _Alignas(64) unsigned char data[RING_BYTES];
};
static struct ring *ring_a, *ring_b;
static int commands[2], replies[2]; /* pipes parent -> child, child -> parent */
/* 16 bytes sent; sized by the literal (with its NUL), which GCC 15+ warns to truncate. */
static const char message16[] = "mmmmmmmmmmmmmmmm";

static struct ring *open_ring(void) {
  struct ring *r =
      mmap(NULL, sizeof *r, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (r == MAP_FAILED) die("mmap");
  return r;
}
/* Writes up to count records (waiting for space), publishing tail once for all of them. */
static void ring_push(struct ring *r, long count) {
  uint64_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
  while (tail + (uint64_t)count * RECORD_BYTES -
             atomic_load_explicit(&r->head, memory_order_acquire) >
         RING_BYTES) {
  }
  for (long i = 0; i < count; ++i, tail += RECORD_BYTES) {
    unsigned char *record = r->data + tail % RING_BYTES;
    *(uint64_t *)record = 16;
    memcpy(record + 16, message16, 16);
  }
  atomic_store_explicit(&r->tail, tail, memory_order_release);
}
/* Reads at most count records (waiting for the first); returns how many. */
static long ring_pop(struct ring *r, long count, char *out) {
  uint64_t head = atomic_load_explicit(&r->head, memory_order_relaxed), tail;
  while ((tail = atomic_load_explicit(&r->tail, memory_order_acquire)) == head) {
  }
  long got = 0;
  for (; got < count && head < tail; ++got, head += RECORD_BYTES) {
    unsigned char *record = r->data + head % RING_BYTES;
    memcpy(out, record + 16, *(uint64_t *)record);
  }
  atomic_store_explicit(&r->head, head, memory_order_release);
  return got;
}
static void ring_send_receive(long n) {
  for (long i = 0; i < n; ++i) {
    ring_push(ring_a, 1);
    ring_pop(ring_a, 1, buffer_out);
  }
}
/* Two processes, as cases.py's stream(): the parent writes n to the child, sends n messages,
 * and waits until the child says it has received them all. */
static long stream_batch = 1;
static void ring_stream(long n) {
  if (write(commands[1], &n, sizeof n) != sizeof n) die("write");
  for (long sent = 0; sent < n; sent += stream_batch)
    ring_push(ring_a, n - sent < stream_batch ? n - sent : stream_batch);
  char ack;
  if (read(replies[0], &ack, 1) != 1) die("read");
}
static void serve_ring_stream(void) {
  long n;
  while (read(commands[0], &n, sizeof n) == sizeof n) {
    for (long got = 0; got < n;) got += ring_pop(ring_a, stream_batch, buffer_out);
    if (write(replies[1], "k", 1) != 1) die("write");
  }
  _exit(0);
}
static void start_stream(long batch) {
  stream_batch = batch;
  ring_a = open_ring();
  if (pipe(commands) != 0 || pipe(replies) != 0) die("pipe");
  child = fork();
  if (child == 0) {
    close(commands[1]);
    pin_to(1);
    serve_ring_stream();
  }
  close(commands[0]);
  pin_to(0);
}
static void stop_stream(void) {
  close(commands[1]); /* the child sees the end of the commands and exits */
  waitpid(child, NULL, 0);
  child = 0;
}
/* Streams of larger messages (64 KiB, 1 MiB): the same ring with a capacity and a message size
 * of the row's (records padded to 16; a record that would straddle the end starts the next lap,
 * as the Channel's PAD). The producer publishes as many records of its batch as fit, then
 * busy-polls for space; the consumer takes up to a batch per head update, into one buffer. */
struct sized_ring {
  _Alignas(64) _Atomic uint64_t tail;
  _Alignas(64) _Atomic uint64_t head;
  _Alignas(64) unsigned char data[];
};
static struct sized_ring *sized;
static uint64_t sized_capacity, sized_message;
static uint64_t sized_place(uint64_t position) { /* where a record at position really starts */
  uint64_t span = (16 + sized_message + 15) & ~(uint64_t)15;
  return position % sized_capacity + span > sized_capacity
             ? position + sized_capacity - position % sized_capacity
             : position;
}
static void sized_push(long count) {
  uint64_t span = (16 + sized_message + 15) & ~(uint64_t)15;
  uint64_t tail = atomic_load_explicit(&sized->tail, memory_order_relaxed);
  for (long done = 0; done < count;) {
    uint64_t head = atomic_load_explicit(&sized->head, memory_order_acquire), end = tail;
    long fits = 0;
    for (; done + fits < count; ++fits) {
      uint64_t at = sized_place(end);
      if (at + span - head > sized_capacity) break;
      unsigned char *record = sized->data + at % sized_capacity;
      *(uint64_t *)record = sized_message;
      memcpy(record + 16, buffer_in, sized_message);
      end = at + span;
    }
    if (fits) {
      atomic_store_explicit(&sized->tail, end, memory_order_release);
      tail = end;
      done += fits;
    }
  }
}
static long sized_pop(long count) {
  uint64_t span = (16 + sized_message + 15) & ~(uint64_t)15;
  uint64_t head = atomic_load_explicit(&sized->head, memory_order_relaxed), tail;
  while ((tail = atomic_load_explicit(&sized->tail, memory_order_acquire)) == head) {
  }
  long got = 0;
  for (; got < count && head < tail; ++got) {
    uint64_t at = sized_place(head);
    unsigned char *record = sized->data + at % sized_capacity;
    memcpy(buffer_out, record + 16, *(uint64_t *)record);
    head = at + span;
  }
  atomic_store_explicit(&sized->head, head, memory_order_release);
  return got;
}
static void sized_stream(long n) {
  if (write(commands[1], &n, sizeof n) != sizeof n) die("write");
  for (long sent = 0; sent < n; sent += stream_batch)
    sized_push(n - sent < stream_batch ? n - sent : stream_batch);
  char ack;
  if (read(replies[0], &ack, 1) != 1) die("read");
}
static void serve_sized_stream(void) {
  long n;
  while (read(commands[0], &n, sizeof n) == sizeof n) {
    for (long got = 0; got < n;) got += sized_pop(stream_batch);
    if (write(replies[1], "k", 1) != 1) die("write");
  }
  _exit(0);
}
static void start_sized_stream(uint64_t message, uint64_t capacity, long batch) {
  sized_message = message;
  sized_capacity = capacity;
  stream_batch = batch;
  sized = mmap(NULL, sizeof *sized + capacity, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
               -1, 0);
  if (sized == MAP_FAILED) die("mmap");
  if (pipe(commands) != 0 || pipe(replies) != 0) die("pipe");
  child = fork();
  if (child == 0) {
    close(commands[1]);
    pin_to(1);
    serve_sized_stream();
  }
  close(commands[0]);
  pin_to(0);
}
static void ring_ping(long n) {
  for (long i = 0; i < n / 2 + 1; ++i) {
    ring_push(ring_a, 1);
    ring_pop(ring_b, 1, buffer_out);
  }
}
static void serve_ring_ping(void) {
  for (;;) {
    ring_pop(ring_a, 1, buffer_out);
    ring_push(ring_b, 1);
  }
}
/* Ping-pong through futex words and nothing else: each side bumps the other's word and wakes
 * it, then sleeps until its own word changes (what a Channel with spin=0 does when it waits). */
static long futex_call(_Atomic uint32_t *word, int operation, uint32_t value) {
  return syscall(SYS_futex, word, operation, value, NULL, NULL, 0);
}
static void futex_signal(_Atomic uint32_t *word) {
  atomic_fetch_add(word, 1);
  futex_call(word, FUTEX_WAKE, 1);
}
static void futex_await(_Atomic uint32_t *word, uint32_t *seen) {
  uint32_t now;
  while ((now = atomic_load(word)) == *seen) futex_call(word, FUTEX_WAIT, *seen);
  *seen = now;
}
static void futex_ping(long n) {
  static uint32_t seen;
  for (long i = 0; i < n / 2 + 1; ++i) {
    futex_signal(&ring_a->futex_word);
    futex_await(&ring_b->futex_word, &seen);
  }
}
static void serve_futex_ping(void) {
  uint32_t seen = 0;
  for (;;) {
    futex_await(&ring_a->futex_word, &seen);
    futex_signal(&ring_b->futex_word);
  }
}
static void copy_1mib(long n) {
  for (long i = 0; i < n; ++i) {
    memcpy(buffer_out, buffer_in, MIB);
    __asm__ volatile("" ::: "memory"); /* every copy is done */
  }
}

static void serve_semaphores(void) {
  for (;;) {
    sem_wait(sem_a);
    sem_post(sem_b);
  }
}
static void serve_queues(void) {
  char scratch[16];
  unsigned priority;
  for (;;) {
    ssize_t got = mq_receive(mq_a, scratch, sizeof scratch, &priority);
    mq_send(mq_b, scratch, (size_t)got, 0);
  }
}
/* Pins the calling process to the index-th allowed CPU (parent 0, child 1), as cases.py. */
static void pin_to(int index) {
  cpu_set_t allowed, one;
  if (sched_getaffinity(0, sizeof allowed, &allowed) != 0 || CPU_COUNT(&allowed) < 2) return;
  for (int cpu = 0, seen = 0; cpu < CPU_SETSIZE; ++cpu) {
    if (!CPU_ISSET(cpu, &allowed)) continue;
    if (seen++ == index) {
      CPU_ZERO(&one);
      CPU_SET(cpu, &one);
      sched_setaffinity(0, sizeof one, &one);
      return;
    }
  }
}
static void start_child(void (*serve)(void)) {
  child = fork();
  if (child == 0) {
    pin_to(1);
    serve();
  }
  pin_to(0);
}
static void stop_child(void) {
  if (child > 0) {
    kill(child, SIGKILL);
    waitpid(child, NULL, 0);
  }
}

static double measure(step_fn step, double seconds) {
  long batch = 1;
  double elapsed;
  for (;;) {
    double started = now_ns();
    step(batch);
    elapsed = now_ns() - started;
    if (elapsed > 2e7 || batch >= (1L << 28)) break;
    batch *= 4;
  }
  double best = elapsed / batch, deadline = now_ns() + seconds * 1e9;
  while (now_ns() < deadline) {
    double started = now_ns();
    step(batch);
    double per = (now_ns() - started) / batch;
    if (per < best) best = per;
  }
  return best;
}

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: floor CASE SECONDS\n");
    return 2;
  }
  const char *name = argv[1];
  double seconds = atof(argv[2]), ns = -1;
  set_prefix();
  buffer_in = calloc(1, MIB + 16);
  buffer_out = calloc(1, MIB + 16);
  if (!strcmp(name, "posix_sem_acquire_release") ||
      !strcmp(name, "posix_sem_acquire_release_busy_thread")) {
    open_semaphores(1);
    ns = measure(sem_wait_post, seconds);
    close_semaphores();
  } else if (!strcmp(name, "posix_sem_acquire0_release")) {
    open_semaphores(1);
    ns = measure(sem_trywait_post, seconds);
    close_semaphores();
  } else if (!strcmp(name, "posix_sem_acquire0_busy")) {
    open_semaphores(0);
    ns = measure(sem_trywait_busy, seconds);
    close_semaphores();
  } else if (!strcmp(name, "posix_pingpong_semaphores_one_way")) {
    open_semaphores(0);
    start_child(serve_semaphores);
    ns = measure(sem_ping, seconds);
    stop_child();
    close_semaphores();
  } else if (!strncmp(name, "posix_sem_contention_", 21)) {
    contenders = atoi(name + 21);
    open_semaphores(1);
    ns = measure(sem_contend, seconds);
    close_semaphores();
  } else if (!strncmp(name, "posix_mq_send_receive_", 22)) {
    const char *label = name + 22;
    if (!strncmp(label, "into_", 5)) label += 5; /* receive_into: the same syscalls */
    size_t size = !strcmp(label, "16B")    ? 16
                  : !strcmp(label, "1KiB") ? 1024
                  : !strcmp(label, "8KiB") ? 8192
                                           : 65536;
    open_queues(8, size);
    ns = measure(mq_send_receive, seconds);
    close_queues();
  } else if (!strcmp(name, "posix_pingpong_queues_one_way")) {
    open_queues(2, 16);
    start_child(serve_queues);
    ns = measure(mq_ping, seconds);
    stop_child();
    close_queues();
  } else if (!strcmp(name, "posix_shm_create_map_write_unlink_1MiB")) {
    own_name(name_a, sizeof name_a, "shm");
    ns = measure(shm_cycle, seconds);
  } else if (!strcmp(name, "posix_shm_mapped_write_read_1MiB") ||
             !strcmp(name, "posix_shm_memoryview_write_read_1MiB") ||
             !strcmp(name, "sysv_shm_write_read_1MiB") ||
             !strcmp(name, "sysv_shm_memoryview_write_read_1MiB")) {
    mapped = mmap(NULL, MIB, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    ns = measure(copy_in_out, seconds);
    munmap(mapped, MIB);
  } else if (!strcmp(name, "robust_lock_acquire_release")) {
    open_robust_mutex();
    ns = measure(robust_lock_unlock, seconds);
    close_robust_mutex();
  } else if (!strcmp(name, "robust_lock_vs_sysv_undo_acquire_release")) {
    /* The upstream side's syscalls (robust_lock_acquire_release has the RobustLock floor). */
    sysv_sem = semget(IPC_PRIVATE, 1, 0600);
    if (sysv_sem < 0) die("semget");
    record_sysv("sem", sysv_sem);
    semctl(sysv_sem, 0, SETVAL, 1);
    ns = measure(sysv_take_give_undo, seconds);
    semctl(sysv_sem, 0, IPC_RMID);
  } else if (!strcmp(name, "sysv_semset_op_2_vs_2_semops")) {
    sysv_sem = semget(IPC_PRIVATE, 2, 0600);
    if (sysv_sem < 0) die("semget");
    record_sysv("sem", sysv_sem);
    semctl(sysv_sem, 0, SETVAL, 1);
    semctl(sysv_sem, 1, SETVAL, 1);
    ns = measure(sysv_take_give_pair, seconds);
    semctl(sysv_sem, 0, IPC_RMID);
  } else if (!strncmp(name, "sysv_sem_", 9)) {
    sysv_sem = semget(IPC_PRIVATE, 1, 0600);
    if (sysv_sem < 0) die("semget");
    record_sysv("sem", sysv_sem);
    if (!strcmp(name, "sysv_sem_acquire_release")) {
      semctl(sysv_sem, 0, SETVAL, 1);
      ns = measure(sysv_take_give, seconds);
    } else {
      ns = measure(sysv_nowait_busy, seconds);
    }
    semctl(sysv_sem, 0, IPC_RMID);
  } else if (!strncmp(name, "sysv_mq_send_receive_", 21)) {
    sysv_queue = msgget(IPC_PRIVATE, 0600);
    if (sysv_queue < 0) die("msgget");
    record_sysv("msg", sysv_queue);
    message_size = !strcmp(name + 21, "16B") ? 16 : 8192;
    *(long *)buffer_in = 1;
    ns = measure(sysv_msg_send_receive, seconds);
    msgctl(sysv_queue, IPC_RMID, NULL);
  } else if (!strcmp(name, "channel_send_receive_16B_vs_posix_mq")) {
    ring_a = open_ring();
    ns = measure(ring_send_receive, seconds);
  } else if (!strncmp(name, "channel_2proc_64KiB_", 20)) {
    start_sized_stream(64 * 1024, MIB, RING_BATCH);
    ns = measure(sized_stream, seconds);
    stop_stream();
  } else if (!strncmp(name, "channel_2proc_1MiB_", 19)) {
    start_sized_stream(MIB, 8 * MIB, RING_BATCH);
    ns = measure(sized_stream, seconds);
    stop_stream();
  } else if (!strncmp(name, "channel_2proc_", 14)) {
    start_stream(strstr(name, "batch64") ? RING_BATCH : 1);
    ns = measure(ring_stream, seconds);
    stop_stream();
  } else if (!strcmp(name, "channel_pingpong_one_way_vs_iceoryx2_busy")) {
    ring_a = open_ring();
    ring_b = open_ring();
    start_child(serve_ring_ping);
    ns = measure(ring_ping, seconds);
    stop_child();
  } else if (!strcmp(name, "channel_pingpong_spin0_one_way_vs_posix_mq")) {
    ring_a = open_ring();
    ring_b = open_ring();
    start_child(serve_futex_ping);
    ns = measure(futex_ping, seconds);
    stop_child();
  } else if (!strcmp(name, "channel_reserve_peek_1MiB_vs_memcpy")) {
    ns = measure(copy_1mib, seconds);
  } else if (!strncmp(name, "queue_", 6)) {
    /* ipcxx.Queue rows (bench/queue_cases.py): the transport alone, as the Channel rows' floors
     * (16-byte records; a 1 MiB array's floor is one 1 MiB copy; the ping-pong busy-polls, as a
     * Channel's default spin does while the answer is quick). */
    if (strstr(name, "_1MiB_")) {
      ns = measure(copy_1mib, seconds);
    } else if (strstr(name, "pingpong")) {
      ring_a = open_ring();
      ring_b = open_ring();
      start_child(serve_ring_ping);
      ns = measure(ring_ping, seconds);
      stop_child();
    } else {
      start_stream(strstr(name, "batch64") ? RING_BATCH : 1);
      ns = measure(ring_stream, seconds);
      stop_stream();
    }
  } else {
    fprintf(stderr, "unknown case %s\n", name);
    return 2;
  }
  printf("{\"ns\": %.3f}\n", ns);
  return 0;
}
