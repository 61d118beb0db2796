"""Tiny harness for black-box tests of the luasync binary (stdlib only).

    from lstest import Suite
    s = Suite()
    r = s.run(["-e", "print(1)"])
    s.eq("prints", r.out, "1\n")
    s.done()          # prints "N passed, N failed" and exits 1 on failure
"""
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.environ.get("LUASYNC_SOURCE_DIR") or os.path.dirname(os.path.dirname(HERE))


def binary():
    b = os.environ.get("LUASYNC_BIN")
    if b:
        return b
    return os.path.join(ROOT, "build", "luasync")


class Result:
    def __init__(self, rc, out, err):
        self.rc, self.out, self.err = rc, out, err

    def __repr__(self):
        return "rc=%r\nstdout=%r\nstderr=%r" % (self.rc, self.out[:2000], self.err[:2000])


class Suite:
    def __init__(self):
        self.passed = 0
        self.failed = 0
        self.tmp = tempfile.mkdtemp(prefix="luasync-test-")

    def write(self, name, text, mode="w"):
        path = os.path.join(self.tmp, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, mode) as f:
            f.write(text)
        return path

    def run(self, args, input=None, env=None, timeout=60, cwd=None):
        e = dict(os.environ)
        e.update(env or {})
        p = subprocess.run([binary()] + list(args), input=input, capture_output=True,
                           env=e, timeout=timeout, cwd=cwd or self.tmp)
        return Result(p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace"))

    def lua(self, code, args=(), **kw):
        """Runs code from a script file named main.lua in the temp dir."""
        path = self.write("main.lua", code)
        return self.run([path] + list(args), **kw)

    def check(self, name, ok, detail=""):
        if ok:
            self.passed += 1
            print("ok   " + name)
        else:
            self.failed += 1
            print("FAIL " + name)
            if detail:
                print("     " + str(detail).replace("\n", "\n     "))

    def eq(self, name, got, want, detail=""):
        self.check(name, got == want, "want %r\n got %r\n%s" % (want, got, detail))

    def contains(self, name, text, part, detail=""):
        self.check(name, part in text, "want substring %r in\n%r\n%s" % (part, text[:3000], detail))

    def done(self):
        print("%d passed, %d failed" % (self.passed, self.failed))
        sys.exit(1 if self.failed else 0)
