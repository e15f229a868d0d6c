#!/usr/bin/env python3
"""Mutation check: shows that the test suite catches one-line bugs in the library.

Each mutation in scripts/mutations.txt replaces one exact line fragment of a library file with a
wrong one. For each, this script builds the named test target against the mutated library and
runs the named tests; the mutation is *caught* when at least one of them fails (or times out).
A mutation that survives is a hole in the tests.

The work happens in a copy of the tree (a git archive of HEAD under --work), never in the
checkout itself, with its own build directory, so it can run beside other work.

    scripts/mutation_check.py                 # every mutation
    scripts/mutation_check.py --only 3 7      # some of them (numbers as listed)

Exit status 0 when every mutation was caught.
"""
import argparse
import os
import shutil
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def load_mutations(path):
    muts = []
    with open(path) as f:
        for raw in f:
            line = raw.rstrip("\n")
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            parts = [p.strip() for p in line.split("|||")]
            if len(parts) != 6:
                sys.exit(f"mutations.txt: expected 6 fields separated by '|||': {line}")
            name, path_, old, new, target, gtest_filter = parts
            old, new = old.replace("\\n", "\n"), new.replace("\\n", "\n")
            muts.append(dict(name=name, path=path_, old=old, new=new, target=target, filter=gtest_filter))
    return muts


def run(cmd, cwd, timeout, log):
    log.write(f"$ {' '.join(cmd)}\n")
    log.flush()
    try:
        p = subprocess.run(cmd, cwd=cwd, stdout=log, stderr=subprocess.STDOUT, timeout=timeout)
        return p.returncode
    except subprocess.TimeoutExpired:
        log.write("(timed out)\n")
        return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", default="/tmp/mproc-mutations")
    ap.add_argument("--only", type=int, nargs="*")
    ap.add_argument("--test-timeout", type=int, default=300)
    args = ap.parse_args()

    muts = load_mutations(os.path.join(ROOT, "scripts", "mutations.txt"))
    src = os.path.join(args.work, "tree")
    build = os.path.join(args.work, "build")
    os.makedirs(args.work, exist_ok=True)
    if os.path.isdir(src):
        shutil.rmtree(src)
    os.makedirs(src)
    archive = subprocess.run(["git", "-C", ROOT, "archive", "HEAD"], check=True, stdout=subprocess.PIPE).stdout
    subprocess.run(["tar", "-x", "-C", src], input=archive, check=True)
    log_path = os.path.join(args.work, "log.txt")
    log = open(log_path, "w")
    gen = ["-G", "Ninja"] if shutil.which("ninja") else []
    if run(["cmake", "-S", src, "-B", build, *gen, "-DCMAKE_BUILD_TYPE=RelWithDebInfo", "-DMPROC_BUILD_EXAMPLES=OFF",
            "-DMPROC_BUILD_BENCH=OFF"], src, 600, log) != 0:
        sys.exit(f"configure failed; see {log_path}")

    results = []
    for i, m in enumerate(muts, 1):
        if args.only and i not in args.only:
            continue
        file_path = os.path.join(src, m["path"])
        with open(file_path) as f:
            original = f.read()
        if original.count(m["old"]) != 1:
            results.append((i, m["name"], "NOT APPLIED (the line is not there exactly once)"))
            continue
        t0 = time.time()
        try:
            with open(file_path, "w") as f:
                f.write(original.replace(m["old"], m["new"]))
            rc = run(["cmake", "--build", build, "--target", m["target"]], src, 1800, log)
            if rc != 0:
                verdict = "caught (does not compile)"
            else:
                binary = os.path.join(build, "tests", m["target"])
                listed = subprocess.run([binary, "--gtest_list_tests", f"--gtest_filter={m['filter']}"],
                                        stdout=subprocess.PIPE, text=True).stdout
                if not any(line.startswith("  ") for line in listed.splitlines()):
                    verdict = "NO TEST matches the filter"
                else:
                    rc = run([binary, f"--gtest_filter={m['filter']}"], src, args.test_timeout, log)
                    verdict = "SURVIVED" if rc == 0 else ("caught (timed out)" if rc is None else "caught")
        finally:
            with open(file_path, "w") as f:
                f.write(original)
        results.append((i, m["name"], f"{verdict} [{time.time() - t0:.0f} s]"))
        print(f"{i:2d}. {m['name']}: {results[-1][2]}", flush=True)

    caught = sum(1 for r in results if r[2].startswith("caught"))
    print(f"\n{caught} of {len(results)} mutations caught (log: {log_path})")
    return 0 if caught == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())
