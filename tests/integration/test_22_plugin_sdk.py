#!/usr/bin/python3
"""The plugin SDK as an author outside the source tree sees it: installs
<midge/plugin.h>, <midge/mqtt.h> and midge-plugin.pc from the build directory
into a temporary DESTDIR with the build's own `make install`,
compiles the examples out of tree with pkg-config pointed only there
(-std=c11 -Wall -Wextra -Werror), runs auth_static's build in the broker, and
compiles the header alone as C and C++. midge only; skipped without make,
pkg-config or cc, or when MIDGE_BIN is not in a build directory. Run alone:
MIDGE_BIN=<builddir>/midge /usr/bin/python3 tests/integration/test_22_plugin_sdk.py
"""

import os
import shutil
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from midgetest import (PLUGIN_DIR, SRCDIR, PluginTestCase, connack_code, is_mosquitto,  # noqa: E402
                       main, run_midge)

EXAMPLES = os.path.join(SRCDIR, "plugins", "examples")
# The examples and what they need beyond pkg-config's flags.
EXAMPLE_LIBS = {"auth_static": [], "acl_prefix": [], "rewrite": [], "delayed_auth": ["-pthread"]}
CC = os.environ.get("CC_FOR_TESTS") or shutil.which("cc") or shutil.which("gcc")
CXX = shutil.which("c++") or shutil.which("g++")


def clean_env(**extra):
    """The environment without the parent make's jobserver and flags."""
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL",
                                                            "MAKEOVERRIDES", "GNUMAKEFLAGS")}
    env.update(extra)
    return env


def run(cmd, **kw):
    res = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         stdin=subprocess.DEVNULL, universal_newlines=True, timeout=120, **kw)
    if res.returncode != 0:
        raise AssertionError("%s exited with %d:\n%s" % (" ".join(cmd), res.returncode, res.stdout))
    return res.stdout


def why_skip():
    if is_mosquitto():
        return "midge-only: the plugin SDK is midge's"
    for tool, path in (("make", shutil.which("make")), ("pkg-config", shutil.which("pkg-config")),
                       ("a C compiler (cc)", CC)):
        if not path:
            return "%s is not installed" % tool
    if not os.path.exists(os.path.join(PLUGIN_DIR, "Makefile")):
        return "no Makefile in %s (MIDGE_PLUGIN_DIR / MIDGE_BIN's directory is not a build directory)" \
            % PLUGIN_DIR
    return None


SKIP = why_skip()


@unittest.skipIf(SKIP, SKIP or "")
class PluginSdk(PluginTestCase):

    @classmethod
    def setUpClass(cls):
        cls.root = tempfile.mkdtemp(prefix="midgetest-sdk-")
        os.chmod(cls.root, 0o755)
        cls.addClassCleanup(shutil.rmtree, cls.root, True)
        cls.destdir = os.path.join(cls.root, "dest")
        run(["make", "-s", "-C", PLUGIN_DIR, "install", "DESTDIR=" + cls.destdir], env=clean_env())
        found = {}
        for d, _, files in os.walk(cls.destdir):
            for name in files:
                found.setdefault(name, os.path.join(d, name))
        cls.installed = found
        for wanted in ("midge", "plugin.h", "mqtt.h", "midge.yaml"):
            if wanted not in found:
                raise AssertionError("make install did not install %s: %s" % (wanted, sorted(found)))
        if "midge-plugin.pc" not in found:
            raise AssertionError("make install did not install midge-plugin.pc: %s" % sorted(found))
        pcdir = os.path.dirname(found["midge-plugin.pc"])
        # Only the installed .pc file: nothing from the system, the prefix moved under DESTDIR.
        cls.pkg_env = clean_env(PKG_CONFIG_LIBDIR=pcdir, PKG_CONFIG_PATH="",
                                PKG_CONFIG_SYSROOT_DIR=cls.destdir)

    def pkg_config(self, *args):
        return run(["pkg-config"] + list(args) + ["midge-plugin"], env=self.pkg_env).split()

    def compile(self, name, out_dir):
        out = os.path.join(out_dir, name + ".so")
        src = os.path.join(EXAMPLES, name, name + ".c")
        run([CC] + self.pkg_config("--cflags") +
            ["-std=c11", "-Wall", "-Wextra", "-Werror", "-shared", "-fPIC", "-o", out, src] +
            EXAMPLE_LIBS[name], cwd=out_dir)
        return out

    def test_installed_files(self):
        for name in ("plugin.h", "mqtt.h"):
            self.assertIn(name, self.installed)
            self.assertEqual(os.path.basename(os.path.dirname(self.installed[name])), "midge")
        with open(self.installed["midge-plugin.pc"]) as f:
            pc = f.read()
        self.assertNotIn("@", pc, "unsubstituted variables in midge-plugin.pc")

    def test_pkg_config_flags(self):
        cflags = self.pkg_config("--cflags")
        include = os.path.dirname(os.path.dirname(self.installed["plugin.h"]))
        self.assertIn("-I" + include, cflags)
        self.assertEqual(self.pkg_config("--libs"), [], "plugins link nothing of the broker")
        self.assertTrue(self.pkg_config("--variable=plugindir"))

    def test_examples_build_out_of_tree(self):
        out_dir = tempfile.mkdtemp(dir=self.root)
        for name in EXAMPLE_LIBS:
            with self.subTest(example=name):
                so = self.compile(name, out_dir)
                res = run_midge("--plugin-check", so)
                self.assertEqual(res.returncode, 0, res.stdout + res.stderr)
                self.assertIn("abi version: 1", res.stdout.splitlines())

    def test_out_of_tree_plugin_runs(self):
        out_dir = tempfile.mkdtemp(dir=self.root)
        os.chmod(out_dir, 0o755)
        so = self.compile("auth_static", out_dir)
        self.start_plugins([{"path": so, "options": {"user_alice": "secret"}}])
        self.assertEqual(connack_code(self.port, username="alice", password="secret"), 0)
        self.assertEqual(connack_code(self.port, username="alice", password="nope"), 4)
        self.broker.wait_log(r"auth_static")

    def header_compiles(self, compiler, lang, std):
        include = os.path.dirname(os.path.dirname(self.installed["plugin.h"]))
        src = os.path.join(self.root, "only_header." + ("cpp" if lang == "c++" else "c"))
        with open(src, "w") as f:
            f.write("#include <midge/plugin.h>\nint midge_sdk_probe(void);\n"
                    "int midge_sdk_probe(void) { return MIDGE_PLUGIN_ABI_VERSION + MIDGE_EVT_LIMIT; }\n")
        run([compiler, "-std=" + std, "-Wall", "-Wextra", "-Werror", "-I" + include, "-fsyntax-only", src])

    def test_header_alone_in_c(self):
        self.header_compiles(CC, "c", "c11")

    @unittest.skipIf(not CXX, "no C++ compiler")
    def test_header_alone_in_cpp(self):
        self.header_compiles(CXX, "c++", "c++11")


if __name__ == "__main__":
    main()
