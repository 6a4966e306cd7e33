/* What touching an event's pages costs when many apps map one memory image,
 * each at addresses of its own, as a Pool's apps map their snapshot
 * (docs/PERFORMANCE.md, "The pool's working set").
 *
 * APPS private mappings of one 4 MiB memfd; each app first writes one byte of
 * PRIVATE pages (copy-on-write: those pages become its own) and reads SHARED
 * others (one physical copy for all). An "event" of an app reads LINES lines
 * of 64 bytes in each of its SHARED pages and reads and writes LINES lines in
 * each of its PRIVATE pages; events go to the apps in turn, as a pool's do.
 * With `chase`, the event visits those lines in a random order, each load
 * depending on the one before (as an interpreter follows pointers), so that
 * no miss overlaps another and no prefetcher guesses the next line.
 *
 *   cc -O2 -o /tmp/page-cost bench/experiments/page-cost.c
 *   for n in 10 100 1000; do /tmp/page-cost $n 89 0 64; /tmp/page-cost $n 89 38 64; done
 *   for n in 10 1000; do /tmp/page-cost $n 89 0 4 chase; /tmp/page-cost $n 89 29 4 chase; done
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define IMAGE_BYTES (4u << 20)
#define PAGE 4096
#define LINE 64
#define EVENTS 20000

static double now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e9 + t.tv_nsec;
}

int main(int argc, char **argv)
{
    if (argc != 5 && !(argc == 6 && strcmp(argv[5], "chase") == 0)) {
        fprintf(stderr, "usage: %s APPS SHARED_PAGES PRIVATE_PAGES LINES_PER_PAGE [chase]\n",
                argv[0]);
        return 2;
    }
    int chase = argc == 6;
    int apps = atoi(argv[1]), shared = atoi(argv[2]), private = atoi(argv[3]), lines = atoi(argv[4]);
    int pages = IMAGE_BYTES / PAGE;
    if (apps < 1 || shared < 0 || private < 0 || lines < 1 || lines > PAGE / LINE ||
        shared > pages / 2 || private > pages / 2) {
        fprintf(stderr, "out of range: APPS >= 1, PAGES <= %d each, 1 <= LINES <= %d\n",
                pages / 2, PAGE / LINE);
        return 2;
    }

    int fd = memfd_create("image", 0);
    if (fd < 0 || ftruncate(fd, IMAGE_BYTES) != 0) {
        perror("memfd");
        return 1;
    }
    unsigned char *image = mmap(0, IMAGE_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (image == MAP_FAILED) {
        perror("mmap");
        return 1;
    }
    for (unsigned i = 0; i < IMAGE_BYTES; i++)
        image[i] = (unsigned char)(i * 7);

    /* The same pages for every app, as every app runs the same code: shared
       ones in the image's first half, private ones in its second. */
    srand(1);
    int *shared_at = malloc(sizeof(int) * (shared + 1));
    int *private_at = malloc(sizeof(int) * (private + 1));
    for (int i = 0; i < shared; i++)
        shared_at[i] = rand() % (pages / 2);
    for (int i = 0; i < private; i++)
        private_at[i] = pages / 2 + rand() % (pages / 2);

    /* For `chase`: every line an event visits holds the offset of the next
       one, in a random order, written before the apps map the image. */
    int visits = (shared + private) * lines;
    uint32_t *order = calloc(visits + 1, sizeof(uint32_t));
    if (chase) {
        int v = 0;
        for (int i = 0; i < shared; i++)
            for (int l = 0; l < lines; l++)
                order[v++] = (uint32_t)shared_at[i] * PAGE + (uint32_t)(l * PAGE / LINE / lines) * LINE;
        for (int i = 0; i < private; i++)
            for (int l = 0; l < lines; l++)
                order[v++] = (uint32_t)private_at[i] * PAGE + (uint32_t)(l * PAGE / LINE / lines) * LINE;
        for (int i = visits - 1; i > 0; i--) {
            int j = rand() % (i + 1);
            uint32_t t = order[i];
            order[i] = order[j];
            order[j] = t;
        }
        for (int i = 0; i < visits; i++)
            memcpy(&image[order[i]], &order[(i + 1) % visits], sizeof(uint32_t));
    }

    unsigned char **app = malloc(sizeof(*app) * apps);
    for (int a = 0; a < apps; a++) {
        app[a] = mmap(0, IMAGE_BYTES, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
        if (app[a] == MAP_FAILED) {
            perror("mmap");
            return 1;
        }
        for (int i = 0; i < private; i++)
            app[a][(size_t)private_at[i] * PAGE + 8] = (unsigned char)a;
        for (int i = 0; i < shared; i++)
            (void)*(volatile unsigned char *)&app[a][(size_t)shared_at[i] * PAGE];
    }

    /* One untimed pass of rounds to warm up, then the timed one. */
    volatile long sink = 0;
    int rounds = EVENTS / apps + 1;
    double started = 0;
    for (int r = 0; r < 2 * rounds; r++) {
        if (r == rounds)
            started = now_ns();
        for (int a = 0; a < apps; a++) {
            unsigned char *m = app[a];
            long sum = 0;
            if (chase) {
                uint32_t at = order[0];
                for (int i = 0; i < visits; i++) {
                    uint32_t next;
                    memcpy(&next, &m[at], sizeof(next));
                    if (at >= IMAGE_BYTES / 2)
                        m[at + 8]++; /* a private page: written too */
                    at = next;
                }
                sink += at;
                continue;
            }
            for (int i = 0; i < shared; i++)
                for (int l = 0; l < lines; l++)
                    sum += m[(size_t)shared_at[i] * PAGE + l * LINE];
            for (int i = 0; i < private; i++)
                for (int l = 0; l < lines; l++) {
                    size_t at = (size_t)private_at[i] * PAGE + l * LINE;
                    sum += m[at];
                    m[at + 8]++;
                }
            sink += sum;
        }
    }
    double per_event_us = (now_ns() - started) / ((double)rounds * apps) / 1000;
    printf("apps %5d, shared pages %3d, private pages %3d, lines per page %2d%s: %.2f us an event\n",
           apps, shared, private, lines, chase ? " (chased)" : "", per_event_us);
    return 0;
}
