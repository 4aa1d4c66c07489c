"""Finding the moss executable and libmossrt.

The executable: $MOSS_EXECUTABLE, else `moss` on PATH. The library:
$MOSS_LIBRARY, else next to the executable, first in the installed layout
(<prefix>/bin/moss -> <prefix>/lib/libmossrt.so or <prefix>/lib/<multiarch>/),
then in the build tree's (<build>/moss -> <build>/runtime/libmossrt.so), else
ctypes.util.find_library("mossrt"). Each failure says what was tried.
"""
import ctypes.util
import glob
import os
import shutil
import sysconfig

from ._errors import MossError


def find_executable():
    tried = []
    env = os.environ.get("MOSS_EXECUTABLE")
    if env:
        if os.path.isfile(env) and os.access(env, os.X_OK):
            return os.path.abspath(env)
        raise MossError("moss: MOSS_EXECUTABLE=%s is not an executable file" % env)
    tried.append("$MOSS_EXECUTABLE (not set)")
    path = shutil.which("moss")
    if path:
        return os.path.abspath(path)
    tried.append("'moss' on PATH")
    raise MossError("moss: cannot find the moss executable; tried " + ", ".join(tried) +
                    "; set MOSS_EXECUTABLE=/path/to/moss")


def _candidates(exe):
    real = os.path.realpath(exe)
    bindir = os.path.dirname(real)
    prefix = os.path.dirname(bindir)
    out = [os.path.join(prefix, "lib", "libmossrt.so")]
    multiarch = sysconfig.get_config_var("MULTIARCH")
    if multiarch:
        out.append(os.path.join(prefix, "lib", multiarch, "libmossrt.so"))
    out += sorted(glob.glob(os.path.join(prefix, "lib", "*", "libmossrt.so")))
    out.append(os.path.join(prefix, "lib64", "libmossrt.so"))
    out.append(os.path.join(bindir, "runtime", "libmossrt.so"))  # the build tree
    return list(dict.fromkeys(out))


def find_library():
    env = os.environ.get("MOSS_LIBRARY")
    if env:
        if os.path.isfile(env):
            return os.path.abspath(env)
        raise MossError("moss: MOSS_LIBRARY=%s is not a file" % env)
    tried = ["$MOSS_LIBRARY (not set)"]
    try:
        exe = find_executable()
    except MossError as e:
        exe = None
        tried.append("beside the moss executable (%s)" % e.message)
    if exe:
        for c in _candidates(exe):
            if os.path.isfile(c):
                return c
            tried.append(c)
    found = ctypes.util.find_library("mossrt")
    if found:
        return found
    tried.append("ctypes.util.find_library('mossrt')")
    raise MossError("moss: cannot find libmossrt.so; tried " + ", ".join(tried) +
                    "; set MOSS_LIBRARY=/path/to/libmossrt.so")
