"""Under the sanitizers (the ASan+UBSan build) libmossrt is instrumented, and
ctypes can load it into Python only when the sanitizer runtimes were loaded
first: ctest then starts pytest with LD_PRELOAD naming them and leak checks
off (Python itself keeps memory until it exits). The tests' Python children
need the same (tests that start one pass python_env()); the moss processes
the tests start do not, and run as in every other test, with their own
leak checks."""
import os

_PRELOAD = {k: os.environ.pop(k) for k in ("LD_PRELOAD", "ASAN_OPTIONS") if k in os.environ}


def python_env(env):
    """|env| for a Python child that imports moss and loads libmossrt."""
    return dict(env, **_PRELOAD)
