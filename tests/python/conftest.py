"""Under the sanitizers (the ASan+UBSan build) libmossrt is instrumented, and
ctypes can load it into Python only when the sanitizer runtimes were loaded
first: ctest then starts pytest with LD_PRELOAD naming them and leak checks
off (Python itself keeps memory until it exits). Those settings are this
process's alone: the moss processes the tests start run as in every other
test, with their own leak checks."""
import os

os.environ.pop("LD_PRELOAD", None)
os.environ.pop("ASAN_OPTIONS", None)
