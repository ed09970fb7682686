#!/usr/bin/env python3
"""Runs each concsh benchmark beside its Python twin and prints the ratio.

For every bench/NAME.conc with a bench/NAME.py beside it: one warm-up run
of each, then PAIRS runs of the two alternately; the ratio is concsh's
median whole-process wall time over CPython's. Both must print the same
last line, so the two really did the same work. A script without a twin
(`s*.conc`) measures concsh against itself and prints its own result.

    cargo build --release && python3 bench/run.py [NAME ...]

`python3 bench/run.py --race` instead measures what `--race` costs: the
locked increments of two threads (w03), fib (w01) and a pool map (w11),
each with and without it, alternately.

`python3 bench/run.py --lua` measures the scripts with a Lua twin
(NAME.lua: fib and the loop) against `lua5.4`, when it is installed.

`python3 bench/run.py --cluster` starts a redis-server of its own and
`concsh worker`s on this machine, and measures cluster pools: trivial
tasks per second with 2 workers (c01), the latency a cluster adds to a
task over a local pool (c02), and fib(24) x 16 on 1 worker against 2 (c03).
"""

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PAIRS = 5
HERE = Path(__file__).resolve().parent
# `CONCSH=path` measures another build (an older commit's, say).
CONCSH = Path(os.environ.get("CONCSH", HERE.parent / "target" / "release" / "concsh"))


def timed(command):
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    return time.perf_counter() - start, done.stdout.strip().splitlines()[-1:]


def under_load(command, idle):
    """The same run with two `yes` hogs on the cores, against its idle
    median: a queue between processes must not fall into a storm of
    wake-ups when its tasks are descheduled."""
    hogs = [subprocess.Popen(["yes"], stdout=subprocess.DEVNULL) for _ in range(2)]
    try:
        loaded = statistics.median(timed(command)[0] for _ in range(PAIRS))
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait()
    return f"under two CPU hogs {loaded:.3f} s: {loaded / idle:.2f}x its idle time"


def fork_floor(line):
    """A C fork plus waitpid of a process as large as concsh's was (its
    `rss N KB`), from bench/fork_baseline.c, beside concsh's own time."""
    words = line.split()
    ours, rss = float(words[1]), words[words.index("rss") + 1]
    binary = Path(tempfile.gettempdir()) / "concsh_fork_baseline"
    subprocess.run(["cc", "-O2", "-o", str(binary), str(HERE / "fork_baseline.c")], check=True)
    floor = float(subprocess.run([str(binary), rss], capture_output=True, text=True, check=True).stdout)
    return f"C fork+waitpid {floor:.1f} us: concsh is {ours / floor:.2f}x"


def alternating(first, second):
    """The median times of PAIRS runs of each command, taken in turns."""
    times = ([], [])
    for _ in range(PAIRS):
        times[0].append(timed(first)[0])
        times[1].append(timed(second)[0])
    return statistics.median(times[0]), statistics.median(times[1])


RACE_COST = ["w03_lock_threads", "w01_fib", "w11_pool_map"]
# Run only under --race, by race_cost: what the detector keeps.
RACE_MEMORY = "s23_race_memory"


def race_cost():
    print(f"{'workload':<24} {'plain s':>9} {'--race s':>9} {'ratio':>7}")
    for name in RACE_COST:
        script = str(HERE / f"{name}.conc")
        plain, raced = [str(CONCSH), script], [str(CONCSH), "--race", script]
        timed(plain), timed(raced)
        a, b = alternating(plain, raced)
        print(f"{name:<24} {a:>9.3f} {b:>9.3f} {b / a:>6.2f}x")
    line = timed([str(CONCSH), "--race", str(HERE / f"{RACE_MEMORY}.conc")])[1][0]
    print(f"{RACE_MEMORY:<24} {line}")


# Run only by explore_rate, under --explore.
EXPLORE = ["x01_explore_threads", "x02_explore_processes"]
SCHEDULES = 1000


def explore_rate():
    print(f"{'workload':<24} {'schedules/s':>12}")
    for name in EXPLORE:
        command = [str(CONCSH), "--explore", str(SCHEDULES), "--seed", "1", str(HERE / f"{name}.conc")]
        timed(command)
        seconds = statistics.median(timed(command)[0] for _ in range(PAIRS))
        print(f"{name:<24} {SCHEDULES / seconds:>12.0f}")


def copy_cost():
    """copy_file of a 1 GiB file against cp's, alternately (medians)."""
    folder = Path(f"/tmp/concsh-bench-copy-{os.getpid()}")
    folder.mkdir()
    try:
        source = folder / "big.bin"
        with open(source, "wb") as f:
            block = os.urandom(1 << 20)
            for _ in range(1024):
                f.write(block)
        target = str(folder / "copy.bin")
        ours = [str(CONCSH), "-c", f'copy_file("{source}", "{target}")']
        theirs = ["cp", str(source), target]
        timed(ours), timed(theirs)
        a, b = alternating(ours, theirs)
        print(f"{'copy_file 1 GiB':<24} {a:>9.3f} {b:>9.3f} {a / b:>6.2f}x (against cp)")
    finally:
        shutil.rmtree(folder)


def lua_cost():
    lua = shutil.which("lua5.4")
    if lua is None:
        sys.exit("lua5.4 is not installed (Debian package lua5.4)")
    print(f"{'workload':<24} {'concsh s':>9} {'lua s':>9} {'ratio':>7}")
    for twin in sorted(HERE.glob("*.lua")):
        ours, theirs = [str(CONCSH), str(twin.with_suffix(".conc"))], [lua, str(twin)]
        if timed(ours)[1] != timed(theirs)[1]:
            sys.exit(f"{twin.stem}: concsh and lua printed different results")
        a, b = alternating(ours, theirs)
        print(f"{twin.stem:<24} {a:>9.3f} {b:>9.3f} {a / b:>6.2f}x")


def cluster_cost():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"redis://127.0.0.1:{port}"
    server = subprocess.Popen(["redis-server", "--port", str(port), "--save", "", "--appendonly", "no"],
                              stdout=subprocess.DEVNULL)
    workers = []

    def start_workers(count):
        for w in workers:
            w.terminate()
            w.wait()
        workers.clear()
        for i in range(count):
            w = subprocess.Popen([str(CONCSH), "worker", url, "--jobs", "1", "--name", f"bench{i}"],
                                 stderr=subprocess.PIPE, text=True)
            w.stderr.readline()
            workers.append(w)

    def median_line(script, cluster=True, field=1):
        command = [str(CONCSH)] + (["--cluster", url] if cluster else []) + [str(HERE / f"{script}.conc")]
        timed(command)
        values = [float(timed(command)[1][0].split()[field]) for _ in range(PAIRS)]
        return statistics.median(values)

    try:
        time.sleep(0.3)
        start_workers(2)
        rate = median_line("c01_cluster_tasks", field=1)
        print(f"{'c01 cluster tasks/s':<28} {rate:>10.0f} (2 workers)")
        local = median_line("c02_cluster_latency", cluster=False, field=3)
        remote = median_line("c02_cluster_latency", field=3)
        print(f"{'c02 ms per task':<28} local {local:.3f}, cluster {remote:.3f}: adds {remote - local:.3f} ms")
        two = median_line("c03_cluster_fib", field=1)
        start_workers(1)
        one = median_line("c03_cluster_fib", field=1)
        print(f"{'c03 fib(24) x 16 seconds':<28} 1 worker {one:.3f}, 2 workers {two:.3f}: {one / two:.2f}x")
    finally:
        for w in workers:
            w.terminate()
            w.wait()
        server.terminate()
        server.wait()


def main(names):
    if names == ["--cluster"]:
        return cluster_cost()
    if names == ["--race"]:
        return race_cost()
    if names == ["--copy"]:
        return copy_cost()
    if names == ["--explore"]:
        return explore_rate()
    if names == ["--lua"]:
        return lua_cost()
    if not CONCSH.exists():
        sys.exit("build first: cargo build --release")
    scripts = [s for s in sorted(HERE.glob("*.conc"))
               if s.stem != RACE_MEMORY and s.stem not in EXPLORE and not s.stem.startswith("c0")]
    if names:
        scripts = [s for s in scripts if s.stem in names]
    print(f"{'workload':<24} {'concsh s':>9} {'python s':>9} {'ratio':>7}")
    for script in scripts:
        twin = script.with_suffix(".py")
        if not twin.exists():
            line = timed([str(CONCSH), str(script)])[1][0]
            print(f"{script.stem:<24} {line}")
            if script.stem == "s22_spawn_cost":
                print(f"{'':<24} {fork_floor(line)}")
            continue
        ours, theirs = [str(CONCSH), str(script)], [sys.executable, "-S", str(twin)]
        _, our_line = timed(ours)
        _, their_line = timed(theirs)
        if our_line != their_line:
            sys.exit(f"{script.stem}: concsh printed {our_line}, python {their_line}")
        a, b = alternating(ours, theirs)
        print(f"{script.stem:<24} {a:>9.3f} {b:>9.3f} {a / b:>6.2f}x")
        if script.stem == "w08_queue_processes":
            print(f"{'':<24} {under_load(ours, a)}")


if __name__ == "__main__":
    main(sys.argv[1:])
