import multiprocessing as mp
import os
import shutil

base = f"/tmp/python-bench-copy-{os.getpid()}"
src = os.path.join(base, "src")
dest = os.path.join(base, "dest")


def copy_one(name):
    with open(os.path.join(src, name), "rb") as f:
        data = f.read()
    with open(os.path.join(dest, name), "wb") as f:
        f.write(data)
    return 1


if __name__ == "__main__":
    os.makedirs(src)
    os.makedirs(dest)
    block = bytes(i % 256 for i in range(1024))
    for i in range(2000):
        with open(os.path.join(src, f"f{i}.bin"), "wb") as f:
            f.write(block)
    with mp.get_context("fork").Pool(4) as pl:
        copied = sum(pl.map(copy_one, os.listdir(src)))
    shutil.rmtree(base)
    print(f"copied {copied} files")
