/* VM floor of the latency bench's path without Python: a paced sender (10 k msgs/s, absolute
 * deadlines) writes its CLOCK_MONOTONIC send time over loopback TCP; the receiver blocks in
 * read() (or spins on a non-blocking socket with argv[3]=="spin") and records now - sent.
 * Build and run: cc -O2 -o /tmp/latency_floor bench/latency_floor.c && /tmp/latency_floor 5 10000
 * usage: latency_floor SECONDS RATE [spin] -> p50 p99 p99.9 max (us), first 5 % dropped */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int64_t now_ns(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec * 1000000000LL + t.tv_nsec; }
static int cmp(const void *a, const void *b) { int64_t x = *(const int64_t *)a, y = *(const int64_t *)b; return x < y ? -1 : x > y; }

int main(int argc, char **argv) {
    double secs = atof(argv[1]); double rate = atof(argv[2]); int spin = argc > 3 && !strcmp(argv[3], "spin");
    long n = (long)(secs * rate);
    int ls = socket(AF_INET, SOCK_STREAM, 0); struct sockaddr_in a = {0}; a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK); socklen_t al = sizeof a;
    bind(ls, (struct sockaddr *)&a, sizeof a); listen(ls, 1); getsockname(ls, (struct sockaddr *)&a, &al);
    pid_t pid = fork();
    if (pid == 0) {
        int s = socket(AF_INET, SOCK_STREAM, 0); int one = 1;
        connect(s, (struct sockaddr *)&a, sizeof a); setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        struct timespec dl; clock_gettime(CLOCK_MONOTONIC, &dl);
        long step = (long)(1e9 / rate);
        for (long i = 0; i < n; i++) {
            dl.tv_nsec += step; while (dl.tv_nsec >= 1000000000L) { dl.tv_nsec -= 1000000000L; dl.tv_sec++; }
            clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &dl, NULL);
            int64_t t = now_ns(); char buf[64]; memset(buf, 'x', sizeof buf); memcpy(buf, &t, 8);
            if (write(s, buf, sizeof buf) != sizeof buf) _exit(1);
        }
        close(s); _exit(0);
    }
    int c = accept(ls, NULL, NULL);
    if (spin) fcntl(c, F_SETFL, O_NONBLOCK);
    int64_t *lat = malloc(sizeof(int64_t) * n); long got = 0; char buf[64 * 64]; size_t have = 0;
    while (got < n) {
        ssize_t r = read(c, buf + have, sizeof buf - have);
        if (r < 0 && errno == EAGAIN) continue;
        if (r <= 0) break;
        int64_t t = now_ns(); have += r;
        size_t k = 0;
        for (; k + 64 <= have; k += 64) { int64_t s; memcpy(&s, buf + k, 8); if (got < n) lat[got++] = t - s; }
        memmove(buf, buf + k, have - k); have -= k;
    }
    waitpid(pid, NULL, 0);
    long skip = got / 20; int64_t *v = lat + skip; long m = got - skip;
    qsort(v, m, sizeof *v, cmp);
    printf("%s: n=%ld p50 %.1f p99 %.1f p99.9 %.1f max %.1f us\n", spin ? "spin" : "block", m,
           v[m / 2] / 1e3, v[(long)(m * 0.99)] / 1e3, v[(long)(m * 0.999)] / 1e3, v[m - 1] / 1e3);
    return 0;
}
