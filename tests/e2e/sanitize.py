"""What the tests that load a moss library into Python with ctypes need when
that library is built with the sanitizers (the ASan+UBSan suite): Python is
not, so the sanitizer's runtime must be preloaded in the process that loads
it."""
import os
import subprocess


def sanitizer_preload(lib):
    """LD_PRELOAD for a library built with -fsanitize=address: python is
    not, so the sanitizer's runtime must be loaded first. '' when not
    needed; None when needed but not found."""
    data = open(lib, "rb").read()
    if b"__asan_init" not in data:
        return ""
    for cc in (os.environ.get("CC", ""), "cc", "gcc", "clang"):
        if not cc:
            continue
        try:
            p = subprocess.run([cc, "-print-file-name=libasan.so"], capture_output=True, text=True)
        except OSError:
            continue
        path = p.stdout.strip()
        if p.returncode == 0 and os.path.isabs(path) and os.path.exists(path):
            return path
    return None


def sanitized_env(lib, env):
    """|env| for a child process that loads |lib| with ctypes: with the
    sanitizer's runtime preloaded and leak checks off (Python keeps memory
    until it exits) when |lib| needs it. Raises when it needs one and none
    is found."""
    pre = sanitizer_preload(lib)
    if pre is None:
        raise RuntimeError("%s is built with AddressSanitizer and no libasan.so was found "
                           "to preload for ctypes" % lib)
    env = dict(env)
    if pre:
        env["LD_PRELOAD"] = pre
        env["ASAN_OPTIONS"] = (env.get("ASAN_OPTIONS", "") + ":detect_leaks=0").lstrip(":")
    return env
