#!/usr/bin/env python3
"""ringlb integration test runner (standard library only).

    python3 tests/integration/run.py --binary build/ringlb [--sanitized] [-k PATTERN] [-v]

Tests are the functions named test_* in tests/integration/test_*.py, run in
file order. Each runs in its own Python process (its own session, so a hard
timeout can take down everything it started) with its own ringlb and backend
processes. The last line printed is always

    integration: N passed, N failed, N skipped

and the exit status is 1 if any test failed.
"""

import argparse
import fnmatch
import importlib
import inspect
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import lib  # noqa: E402

EXIT_PASS, EXIT_FAIL, EXIT_SKIP = 0, 1, 3
DEFAULT_TIMEOUT = 60


def discover():
    tests = []
    for fname in sorted(os.listdir(HERE)):
        if not (fname.startswith("test_") and fname.endswith(".py")):
            continue
        mod = importlib.import_module(fname[:-3])
        fns = [f for n, f in vars(mod).items()
               if n.startswith("test_") and inspect.isfunction(f) and f.__module__ == mod.__name__]
        fns.sort(key=lambda f: f.__code__.co_firstlineno)
        for f in fns:
            tests.append(("%s.%s" % (mod.__name__, f.__name__), f))
    return tests


def matches(name, patterns):
    """True if `name` matches any pattern: a substring, or a glob if the
    pattern has *, ? or [."""
    if not patterns:
        return True
    for pattern in patterns:
        if any(c in pattern for c in "*?["):
            if fnmatch.fnmatch(name, pattern) or fnmatch.fnmatch(name, "*" + pattern + "*"):
                return True
        elif pattern in name:
            return True
    return False


# -- child: run one test ------------------------------------------------------


def run_child(opts, name):
    fn = dict(discover())[name]
    limit = getattr(fn, "timeout", DEFAULT_TIMEOUT)
    if opts.sanitized:
        limit = int(limit * 1.5)

    def on_alarm(signum, frame):
        raise lib.TestTimeout("test ran out of time (%ds)" % limit)

    signal.signal(signal.SIGALRM, on_alarm)
    # The parent kills us at limit + 15 s; the alarm leaves time to clean up.
    signal.alarm(limit)
    t = lib.T(name, opts)
    status, failed = EXIT_PASS, False
    try:
        fn(t)
    except lib.Skip as e:
        status = EXIT_SKIP
        print("SKIP: %s" % e)
    except lib.TestFailure as e:
        status, failed = EXIT_FAIL, True
        print("FAIL: %s" % e)
        traceback.print_exc(limit=-3, file=sys.stdout)
    except BaseException as e:  # noqa: B902 - timeouts, socket errors, bugs
        status, failed = EXIT_FAIL, True
        print("ERROR: %s: %s" % (type(e).__name__, e))
        traceback.print_exc(file=sys.stdout)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, signal.SIG_DFL)
        signal.alarm(60)  # a stuck clean-up still ends before the parent's kill
        problems = t.cleanup(failed)
        signal.alarm(0)
    if problems and status != EXIT_FAIL:
        status = EXIT_FAIL
        for p in problems:
            print("FAIL: %s" % p)
    elif problems:
        for p in problems:
            print("also: %s" % p)
    sys.stdout.flush()
    return status


# -- parent: run them all -----------------------------------------------------


def run_one(opts, name, fn, argv_common):
    limit = getattr(fn, "timeout", DEFAULT_TIMEOUT)
    if opts.sanitized:
        limit = int(limit * 1.5)
    cmd = [sys.executable, os.path.abspath(__file__), "--child", name] + argv_common
    start = time.monotonic()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        out, _ = p.communicate(timeout=limit + 15)
        rc = p.returncode
    except subprocess.TimeoutExpired:
        # The child leads its own process group: everything it started is in it.
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        out, _ = p.communicate()
        out += b"\nhard timeout: killed after %ds\n" % (limit + 15)
        rc = EXIT_FAIL
    return rc, out.decode("utf-8", "replace"), time.monotonic() - start


def main():
    ap = argparse.ArgumentParser(description="ringlb integration tests")
    ap.add_argument("--binary", default=os.path.join("build", "ringlb"))
    ap.add_argument("--sanitized", action="store_true",
                    help="ASan+UBSan build: smaller big bodies, longer timeouts, "
                         "sanitizer reports fail the test")
    ap.add_argument("-k", dest="patterns", action="append", metavar="PATTERN",
                    help="run tests whose name contains PATTERN (or matches it as a glob); "
                         "repeatable")
    ap.add_argument("-v", dest="verbose", action="store_true", help="print every test's output")
    ap.add_argument("--list", action="store_true", help="list the tests and exit")
    ap.add_argument("--proxy", choices=["ringlb", "nginx"], default="ringlb",
                    help=argparse.SUPPRESS)  # nginx: debugging stand-in for the harness
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--tmp-root", help=argparse.SUPPRESS)
    opts = ap.parse_args()
    if opts.binary:
        opts.binary = os.path.abspath(opts.binary)

    if opts.child:
        sys.exit(run_child(opts, opts.child))

    tests = [(n, f) for n, f in discover() if matches(n, opts.patterns)]
    if opts.list:
        for n, f in tests:
            print(n)
        return 0
    # Every test's files live under one directory, removed at the end even if
    # a test was killed before it could clean up.
    tmp_root = tempfile.mkdtemp(prefix="ringlb-it-")
    try:
        return run_all(opts, tests, tmp_root)
    finally:
        shutil.rmtree(tmp_root, ignore_errors=True)


def run_all(opts, tests, tmp_root):
    argv_common = ["--binary", opts.binary, "--proxy", opts.proxy, "--tmp-root", tmp_root]
    if opts.sanitized:
        argv_common.append("--sanitized")
    if opts.verbose:
        argv_common.append("-v")

    passed = failed = skipped = 0
    failures = []
    t0 = time.monotonic()
    for name, fn in tests:
        rc, out, secs = run_one(opts, name, fn, argv_common)
        if rc == EXIT_PASS:
            passed += 1
            print("ok    %-58s %6.1fs" % (name, secs), flush=True)
            if opts.verbose and out.strip():
                print(_indent(out), flush=True)
            else:
                for line in out.splitlines():
                    if line.startswith("NOTE: "):
                        print("      " + line[6:], flush=True)
        elif rc == EXIT_SKIP:
            skipped += 1
            reason = [ln for ln in out.splitlines() if ln.startswith("SKIP: ")]
            print("skip  %-58s %s" % (name, reason[-1][6:] if reason else ""), flush=True)
            if opts.verbose and out.strip():
                print(_indent(out), flush=True)
        else:
            failed += 1
            failures.append(name)
            print("FAIL  %-58s %6.1fs (exit %d)" % (name, secs, rc), flush=True)
            print(_indent(out), flush=True)
    if failures:
        print("failed tests:\n  " + "\n  ".join(failures))
    print("total time %.1fs" % (time.monotonic() - t0))
    print("integration: %d passed, %d failed, %d skipped" % (passed, failed, skipped), flush=True)
    return 1 if failed else 0


def _indent(text):
    return "\n".join("    " + ln for ln in text.rstrip().splitlines())


if __name__ == "__main__":
    sys.exit(main())
