/* The floor for `spawn` plus `join`: fork and waitpid of a process holding
 * as much resident memory as the concsh process did (argv[1], in KB), the
 * child exiting at once. Prints microseconds per fork and wait, the best of
 * 7 rounds of 200 (noise on a shared machine only ever adds time). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
    size_t kb = argc > 1 ? strtoul(argv[1], NULL, 10) : 0;
    char *held = malloc(kb * 1024 + 1);
    memset(held, 1, kb * 1024); /* resident, as concsh's memory is */
    double best = 1e9;
    for (int round = 0; round < 7; round++) {
        double start = now();
        for (int i = 0; i < 200; i++) {
            pid_t pid = fork();
            if (pid == 0) _exit(0);
            waitpid(pid, NULL, 0);
        }
        double each = (now() - start) / 200;
        if (each < best) best = each;
    }
    printf("%.1f\n", best * 1e6);
    free(held);
    return 0;
}
