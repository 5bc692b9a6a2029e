#!/usr/bin/python3
"""midge_passwd: mosquitto_passwd's command line, and files both brokers read.

Checked here: usage and argument errors (messages and exit codes compared
with /usr/bin/mosquitto_passwd where they are meant to be the same), -c,
-b, -D, -U, -H, -I; edits keep the other lines, their order and the file's
mode, and replace the file by rename (a hard link to the old file keeps the
old contents; no temporary file is left behind); a file the broker would
refuse is not rewritten; the interactive prompts on a terminal (through a
pty: no echo, mismatch, empty password, Ctrl-C restoring the terminal) and
on a pipe. Hashes are verified here with Python's hashlib, and the files are
served by Debian's mosquitto 2.0.11 to real clients (skipped without
/usr/sbin/mosquitto). That midge's broker reads mosquitto_passwd's files is
covered by the unit tests (suite "security") and by the auth tests.

midge_passwd is found beside the broker: $MIDGE_BIN's directory.
Run alone: MIDGE_BIN=$PWD/midge /usr/bin/python3 tests/integration/test_13_passwd_tool.py
"""

import base64
import hashlib
import os
import pty
import select
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import termios
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from midgetest import (MIDGE_BIN, MOSQUITTO_BIN, free_port, listening_addresses, main,  # noqa: E402
                       mosquitto_pub, wait_for)

MIDGE_PASSWD = os.path.join(os.path.dirname(os.path.abspath(MIDGE_BIN)), "midge_passwd")
MOSQUITTO_PASSWD = "/usr/bin/mosquitto_passwd"
DEFAULT_ITERATIONS = 210000


def run(args, stdin=None, tool=MIDGE_PASSWD, cwd=None):
    """Runs the tool; returns (exit code, stdout, stderr) as text."""
    res = subprocess.run([tool] + list(args), input=stdin, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, timeout=60, cwd=cwd)
    return res.returncode, res.stdout.decode("utf-8", "replace"), res.stderr.decode("utf-8", "replace")


def b64d(s, padded=True):
    if not padded:
        s += "=" * (-len(s) % 4)
    return base64.b64decode(s, validate=True)


def hash_matches(encoded, password):
    """Whether a "$6$" / "$7$" hash is the given password's (computed here)."""
    pw = password.encode()
    parts = encoded.split("$")
    if parts[1] == "6":
        salt, digest = b64d(parts[2]), b64d(parts[3])
        return len(salt) == 12 and hashlib.sha512(pw + salt).digest() == digest
    if parts[1] == "7":
        iterations, salt, digest = int(parts[2]), b64d(parts[3]), b64d(parts[4])
        return len(salt) == 12 and hashlib.pbkdf2_hmac("sha512", pw, salt, iterations, 64) == digest
    raise AssertionError("not a $6$/$7$ hash: %r" % encoded)


def read_lines(path):
    with open(path, "rb") as f:
        return f.read().decode().splitlines(keepends=True)


def entry(lines, user):
    """The hash of user's line (the first one)."""
    for line in lines:
        if line.split(":", 1)[0].strip() == user:
            return line.split(":", 1)[1].strip()
    raise AssertionError("no line for %r in %r" % (user, lines))


class ToolCase(unittest.TestCase):
    def setUp(self):
        if not os.access(MIDGE_PASSWD, os.X_OK):
            self.fail("no midge_passwd beside MIDGE_BIN (%s)" % MIDGE_PASSWD)
        self.dir = tempfile.mkdtemp(prefix="midge-passwd-")
        self.addCleanup(shutil.rmtree, self.dir, True)

    def path(self, name="pw"):
        return os.path.join(self.dir, name)

    def write(self, name, data, mode=0o644):
        p = self.path(name)
        with open(p, "wb") as f:
            f.write(data.encode() if isinstance(data, str) else data)
        os.chmod(p, mode)
        return p

    def assert_only(self, *names):
        self.assertEqual(sorted(os.listdir(self.dir)), sorted(names), "(stray temporary file?)")


class CommandLine(ToolCase):
    def test_usage(self):
        rc, out, err = run([])
        self.assertEqual(rc, 1)
        self.assertTrue(out.startswith("midge_passwd is a tool for managing password files"), out)
        self.assertIn("-H sha512-pbkdf2 | -H sha512 | -H argon2id", out)
        self.assertIn(" -I : ", out)
        for args in (["--help"], ["-h"]):
            rc, out2, err = run(args)
            self.assertEqual((rc, out2, err), (0, out, ""), args)
        rc, out3, err = run(["-b", self.path(), "u", "p", "extra"])
        self.assertEqual((rc, out3), (1, out))

    # (arguments, message on stderr); exit code 1, no file made. "F" is the file.
    SHARED_ERRORS = [
        (["-c", "-D", "F", "u"], "Error: -c and -D cannot be used together.\n"),
        (["-c", "-U", "F"], "Error: -c and -U cannot be used together.\n"),
        (["-D", "-U", "F"], "Error: -D and -U cannot be used together.\n"),
        (["-b", "-D", "F", "u"], "Error: -b and -D cannot be used together.\n"),
        (["-H"], "Error: -H argument given but not enough other arguments.\n"),
        (["-H", "md5", "-b", "F", "u", "p"], "Error: Unknown hash type 'md5'\n"),
        (["-I"], "Error: -I argument given but not enough other arguments.\n"),
        (["-I", "0", "-b", "F", "u", "p"], "Error: Number of iterations must be > 0.\n"),
        (["-I", "abc", "-b", "F", "u", "p"], "Error: Number of iterations must be > 0.\n"),
        (["-I", "-5", "-b", "F", "u", "p"], "Error: Number of iterations must be > 0.\n"),
        (["-c", "F"], "Error: -c argument given but password file or username missing.\n"),
        (["-c", "-b", "F", "u"],
         "Error: -c argument given but password file, username, or password missing.\n"),
        (["-D", "F"], "Error: -D argument given but password file or username missing.\n"),
        (["-U"], "Error: -U argument given but password file missing.\n"),
        (["-U", "F", "x"], "Error: -U argument given but password file missing.\n"),
        (["-c", "-b", "F", "a:b", "p"], "Error: Username must not contain the ':' character.\n"),
        (["-c", "-b", "F", "a\x01b", "p"], "Error: Username must not contain control characters.\n"),
        (["-c", "-b", "F", "u" * 65536, "p"],
         "Error: Username must be less than 65536 characters long.\n"),
        (["-c", "-b", "F", "u", "p" * 65536],
         "Error: Password must be less than 65536 characters long.\n"),
        (["-b", "F", "u", "p"], "Error: Unable to open password file F. No such file or directory.\n"),
        (["-D", "F", "u"], "Error: Unable to open password file F. No such file or directory.\n"),
        (["-U", "F"], "Error: Unable to open password file F. No such file or directory.\n"),
    ]

    # midge_passwd refuses user names mosquitto_passwd takes but no broker could match.
    MIDGE_ERRORS = [
        (["-c", "-b", "F", "", "p"], "Error: Invalid username: empty user name.\n"),
        (["-c", "-b", "F", "#u", "p"], "Error: Invalid username: user name starts with '#'"),
        (["-c", "-b", "F", " u", "p"], "Error: Invalid username: user name begins or ends"),
        (["-c", "-b", "F", "u ", "p"], "Error: Invalid username: user name begins or ends"),
    ]

    def check_errors(self, cases, tool, exact):
        for args, message in cases:
            with self.subTest(args=[a[:20] for a in args], tool=tool):
                rc, out, err = run(args, tool=tool, cwd=self.dir)
                self.assertEqual(rc, 1, err)
                if exact:
                    self.assertEqual(err, message)
                else:
                    self.assertTrue(err.startswith(message), err)
                self.assert_only()

    def test_errors(self):
        self.check_errors(self.SHARED_ERRORS, MIDGE_PASSWD, True)
        self.check_errors(self.MIDGE_ERRORS, MIDGE_PASSWD, False)

    def test_errors_match_mosquitto_passwd(self):
        if not os.access(MOSQUITTO_PASSWD, os.X_OK):
            self.skipTest("no %s" % MOSQUITTO_PASSWD)
        self.check_errors(self.SHARED_ERRORS, MOSQUITTO_PASSWD, True)


class Files(ToolCase):
    def test_create(self):
        p = self.path()
        old = os.umask(0o022)
        try:
            rc, out, err = run(["-c", "-b", p, "alice", "s3cret"])
        finally:
            os.umask(old)
        self.assertEqual((rc, out, err), (0, "", ""))
        self.assertEqual(stat.S_IMODE(os.stat(p).st_mode), 0o600)
        lines = read_lines(p)
        self.assertEqual(len(lines), 1)
        self.assertTrue(lines[0].startswith("alice:$7$%d$" % DEFAULT_ITERATIONS), lines)
        self.assertTrue(lines[0].endswith("==\n"))
        self.assertTrue(hash_matches(entry(lines, "alice"), "s3cret"))
        self.assertFalse(hash_matches(entry(lines, "alice"), "s3creT"))
        # -c overwrites, and keeps an existing file's mode.
        os.chmod(p, 0o640)
        self.assertEqual(run(["-c", "-b", p, "bob", "pw"])[0], 0)
        lines = read_lines(p)
        self.assertEqual([l.split(":")[0] for l in lines], ["bob"])
        self.assertEqual(stat.S_IMODE(os.stat(p).st_mode), 0o640)
        self.assert_only("pw")

    def test_hash_types_and_iterations(self):
        p = self.path()
        self.assertEqual(run(["-c", "-H", "sha512", "-b", p, "s", "pw-s"])[0], 0)
        self.assertEqual(run(["-H", "sha512-pbkdf2", "-I", "1000", "-b", p, "k", "pw-k"])[0], 0)
        self.assertEqual(run(["-I", "3", "-b", p, "low", "pw-low"])[0], 0)
        self.assertEqual(run(["-I", "400000", "-b", p, "high", "pw-high"])[0], 0)
        self.assertEqual(run(["-H", "argon2id", "-b", p, "a", "pw-a"])[0], 0)
        self.assertEqual(run(["-H", "argon2id", "-I", "2", "-b", p, "a2", "pw-a2"])[0], 0)
        lines = read_lines(p)
        self.assertTrue(entry(lines, "s").startswith("$6$"))
        self.assertTrue(hash_matches(entry(lines, "s"), "pw-s"))
        for user, iterations in (("k", 1000), ("low", 3), ("high", 400000)):
            self.assertTrue(entry(lines, user).startswith("$7$%d$" % iterations), lines)
            self.assertTrue(hash_matches(entry(lines, user), "pw-" + user))
        for user, t in (("a", 1), ("a2", 2)):
            parts = entry(lines, user).split("$")
            self.assertEqual(parts[1:4], ["argon2id", "v=19", "m=47104,t=%d,p=1" % t])
            self.assertEqual((len(b64d(parts[4], False)), len(b64d(parts[5], False))), (64, 64))

    def test_update_keeps_other_lines(self):
        a = "alice:$6$AQIDBAUGBwgJCgsM$" + "A" * 86 + "==\n"
        original = ("# users of the test broker\n" + a + "\n"
                    "bob:$7$1$AQIDBAUGBwgJCgsM$old\r\n"
                    "  # indented comment\n"
                    "carol:plain-text-for-now\n"
                    "bob:$7$1$AQIDBAUGBwgJCgsM$again\n"
                    "dave:x")  # no final newline
        p = self.write("pw", original, 0o640)
        self.assertEqual(run(["-I", "10", "-b", p, "bob", "new-bob"]), (0, "", ""))
        lines = read_lines(p)
        self.assertEqual(lines[:3], ["# users of the test broker\n", a, "\n"])
        self.assertTrue(lines[3].startswith("bob:$7$10$"))
        self.assertTrue(hash_matches(entry(lines, "bob"), "new-bob"))
        # The repeat of bob goes; the rest stays as it was, newline added at the end.
        self.assertEqual(lines[4:], ["  # indented comment\n", "carol:plain-text-for-now\n", "dave:x\n"])
        self.assertEqual(stat.S_IMODE(os.stat(p).st_mode), 0o640)
        # A new user goes at the end.
        self.assertEqual(run(["-I", "10", "-b", p, "eve", "eve-pw"])[0], 0)
        lines2 = read_lines(p)
        self.assertEqual(lines2[:-1], lines)
        self.assertTrue(hash_matches(entry(lines2, "eve"), "eve-pw"))
        self.assert_only("pw")

    def test_delete(self):
        p = self.write("pw", "a:$6$x\nb:$6$y\n# c\na:$6$z\n")
        self.assertEqual(run(["-D", p, "a"]), (0, "", ""))
        self.assertEqual(read_lines(p), ["b:$6$y\n", "# c\n"])
        before = os.stat(p)
        rc, out, err = run(["-D", p, "nobody"])
        self.assertEqual((rc, out, err), (1, "", "Warning: User nobody not found in password file.\n"))
        self.assertEqual(read_lines(p), ["b:$6$y\n", "# c\n"])
        self.assertEqual(os.stat(p).st_ino, before.st_ino, "(file rewritten anyway)")
        self.assert_only("pw")

    def test_corrupt_file_is_not_rewritten(self):
        for text, line in (("a:$6$x\ngarbage\n", 2), ("a:$6$x\n:nouser\n", 2), ("x\0y:z\n", 1)):
            with self.subTest(text=text):
                p = self.write("pw", text)
                rc, out, err = run(["-I", "1", "-b", p, "a", "pw"])
                self.assertEqual((rc, err), (1, "Error: Corrupt password file at line %d.\n" % line))
                with open(p, "rb") as f:
                    self.assertEqual(f.read(), text.encode())
                self.assert_only("pw")

    def test_hash_plain_text_file(self):
        hashed = "carol:$7$3$AQIDBAUGBwgJCgsM$" + base64.b64encode(
            hashlib.pbkdf2_hmac("sha512", b"carol-pw", bytes(range(1, 13)), 3, 64)).decode() + "\n"
        p = self.write("pw", "# plain\nalice:plain1\r\n bob : plain 2 \n" + hashed, 0o600)
        self.assertEqual(run(["-I", "20", "-U", p]), (0, "", ""))
        lines = read_lines(p)
        self.assertEqual(lines[0], "# plain\n")
        self.assertTrue(lines[1].startswith("alice:$7$20$"), lines)
        self.assertTrue(hash_matches(entry(lines, "alice"), "plain1"))
        self.assertTrue(lines[2].startswith("bob:$7$20$"), lines)
        self.assertTrue(hash_matches(entry(lines, "bob"), "plain 2"))
        # Already hashed: left alone (mosquitto_passwd -U would hash the hash).
        self.assertEqual(lines[3], hashed)
        # Running it again changes nothing.
        self.assertEqual(run(["-U", p])[0], 0)
        self.assertEqual(read_lines(p), lines)
        for bad in ("u:$7$abc\n", "u:\n", "u:a:b\n", "u:$argon2id$v=19$broken\n"):
            with self.subTest(bad=bad):
                q = self.write("bad", "ok:pw\n" + bad)
                rc, out, err = run(["-U", q])
                self.assertEqual((rc, err), (1, "Error: Corrupt password file at line 2.\n"))
                self.assertEqual(read_lines(q), ["ok:pw\n", bad])
        os.unlink(self.path("bad"))
        self.assert_only("pw")

    def test_replaced_by_rename(self):
        p = self.write("pw", "a:$6$x\n", 0o604)
        os.link(p, self.path("old"))
        self.assertEqual(run(["-I", "1", "-b", p, "b", "pw"])[0], 0)
        self.assertEqual(read_lines(self.path("old")), ["a:$6$x\n"])
        self.assertEqual(len(read_lines(p)), 2)
        self.assertEqual(stat.S_IMODE(os.stat(p).st_mode), 0o604)
        self.assert_only("pw", "old")

    def test_symlink_target_is_replaced(self):
        target = self.write("real", "a:$6$x\n", 0o600)
        link = self.path("link")
        os.symlink("real", link)
        self.assertEqual(run(["-I", "1", "-b", link, "b", "pw"])[0], 0)
        self.assertTrue(os.path.islink(link))
        self.assertEqual(len(read_lines(target)), 2)
        self.assert_only("real", "link")

    def test_unwritable_directory(self):
        if os.geteuid() == 0:
            self.skipTest("root writes anywhere")
        sub = os.path.join(self.dir, "ro")
        os.mkdir(sub)
        p = os.path.join(sub, "pw")
        with open(p, "w") as f:
            f.write("a:$6$x\n")
        os.chmod(sub, 0o555)
        self.addCleanup(os.chmod, sub, 0o755)
        rc, out, err = run(["-I", "1", "-b", p, "b", "pw"])
        self.assertEqual(rc, 1)
        self.assertIn("Error: Unable to open file", err)
        self.assertEqual(read_lines(p), ["a:$6$x\n"])


class Prompts(ToolCase):
    def test_pipe(self):
        p = self.path()
        rc, out, err = run(["-c", "-I", "5", p, "u"], stdin=b"pw one\npw one\n")
        self.assertEqual((rc, out, err), (0, "Password: \nReenter password: \n", ""))
        self.assertTrue(hash_matches(entry(read_lines(p), "u"), "pw one"))
        rc, out, err = run(["-I", "5", p, "v"], stdin=b"crlf\r\ncrlf\r\n")
        self.assertEqual(rc, 0, err)
        self.assertTrue(hash_matches(entry(read_lines(p), "v"), "crlf"))
        cases = ((b"a\nb\n", 2, "Password: \nReenter password: \n", "Error: Passwords do not match.\n"),
                 (b"\n", 1, "Password: ", "Error: Empty password.\n"),
                 (b"", 1, "Password: ", "Error: Empty password.\n"),
                 (b"a\n", 1, "Password: \nReenter password: ", "Error: Empty password.\n"),
                 (b"a\n\n", 1, "Password: \nReenter password: ", "Error: Empty password.\n"))
        for stdin, code, prompts, message in cases:
            with self.subTest(stdin=stdin):
                self.assertEqual(run(["-c", self.path("new"), "u"], stdin=stdin), (code, prompts, message))
                self.assertEqual(run(["-I", "5", p, "w"], stdin=stdin), (code, prompts, message))
        self.assertEqual([l.split(":")[0] for l in read_lines(p)], ["u", "v"])
        self.assert_only("pw")

    def start_pty(self, args):
        master, slave = pty.openpty()
        proc = subprocess.Popen([MIDGE_PASSWD] + args, stdin=slave, stdout=slave, stderr=slave,
                                start_new_session=True, preexec_fn=None)
        self.addCleanup(os.close, master)
        self.addCleanup(os.close, slave)
        self.addCleanup(lambda: proc.poll() is None and proc.kill())
        return proc, master, slave

    def read_until(self, master, text, seen):
        deadline = time.monotonic() + 20
        while text not in seen[0]:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("no %r on the terminal; got %r" % (text, seen[0]))
            ready, _, _ = select.select([master], [], [], left)
            if ready:
                try:
                    chunk = os.read(master, 4096)
                except OSError:
                    chunk = b""
                if not chunk:
                    raise AssertionError("terminal closed before %r; got %r" % (text, seen[0]))
                seen[0] += chunk

    def finish(self, proc, master, seen):
        rc = proc.wait(20)
        while True:
            ready, _, _ = select.select([master], [], [], 0)
            if not ready:
                break
            try:
                chunk = os.read(master, 4096)
            except OSError:
                break
            if not chunk:
                break
            seen[0] += chunk
        return rc

    def dialogue(self, args, answers):
        proc, master, slave = self.start_pty(args)
        seen = [b""]
        for prompt, answer in answers:
            self.read_until(master, prompt, seen)
            # The prompt shows once echo is off.
            self.assertFalse(termios.tcgetattr(slave)[3] & termios.ECHO, "(echo on at %r)" % prompt)
            os.write(master, answer)
        rc = self.finish(proc, master, seen)
        self.assertTrue(termios.tcgetattr(slave)[3] & termios.ECHO, "(echo left off)")
        return rc, seen[0].decode("utf-8", "replace")

    def test_terminal(self):
        p = self.path()
        rc, text = self.dialogue(["-c", "-I", "5", p, "u"],
                                 [(b"Password: ", b"tty secret\n"), (b"Reenter password: ", b"tty secret\n")])
        self.assertEqual(rc, 0, text)
        self.assertNotIn("tty secret", text)
        self.assertEqual(text, "Password: \r\nReenter password: \r\n")
        self.assertTrue(hash_matches(entry(read_lines(p), "u"), "tty secret"))

        rc, text = self.dialogue(["-I", "5", p, "v"],
                                 [(b"Password: ", b"one\n"), (b"Reenter password: ", b"two\n")])
        self.assertEqual(rc, 2)
        self.assertIn("Error: Passwords do not match.", text)
        self.assertNotIn("one", text)
        rc, text = self.dialogue(["-I", "5", p, "v"], [(b"Password: ", b"\n")])
        self.assertEqual(rc, 1)
        self.assertIn("Error: Empty password.", text)
        self.assertEqual([l.split(":")[0] for l in read_lines(p)], ["u"])

    def test_interrupt_restores_the_terminal(self):
        p = self.write("pw", "a:$6$x\n")
        proc, master, slave = self.start_pty([p, "b"])
        seen = [b""]
        self.read_until(master, b"Password: ", seen)
        self.assertFalse(termios.tcgetattr(slave)[3] & termios.ECHO)
        os.write(master, b"half a pass")
        os.killpg(proc.pid, signal.SIGINT)
        self.assertEqual(self.finish(proc, master, seen), -signal.SIGINT)
        self.assertTrue(termios.tcgetattr(slave)[3] & termios.ECHO, "(echo left off)")
        self.assertEqual(read_lines(p), ["a:$6$x\n"])
        self.assert_only("pw")


class Mosquitto:
    """Debian's mosquitto serving a password file on a free port."""

    def __init__(self, password_file, directory):
        self.port = free_port()
        conf = os.path.join(directory, "mosquitto.conf")
        with open(conf, "w") as f:
            f.write("listener %d 127.0.0.1\nallow_anonymous false\npassword_file %s\n"
                    "user root\nlog_dest stderr\n" % (self.port, password_file))
        self.log = open(os.path.join(directory, "mosquitto.log"), "w+")
        self.proc = subprocess.Popen([MOSQUITTO_BIN, "-c", conf], stdout=self.log, stderr=self.log)
        wait_for(lambda: self.proc.poll() is not None or listening_addresses(self.port),
                 timeout=10, what="mosquitto listening")
        if self.proc.poll() is not None:
            self.log.seek(0)
            raise AssertionError("mosquitto exited:\n" + self.log.read())

    def connects(self, user, password):
        res = mosquitto_pub(self.port, "-u", user, "-P", password, "-t", "t", "-m", "x", check=False)
        return res.returncode, res.stdout

    def stop(self):
        self.proc.terminate()
        self.proc.wait(10)
        self.log.seek(0)
        text = self.log.read()
        self.log.close()
        return text


class LoadsInMosquitto(ToolCase):
    def setUp(self):
        super().setUp()
        if not os.access(MOSQUITTO_BIN, os.X_OK):
            self.skipTest("no %s" % MOSQUITTO_BIN)

    def serve(self, path, accepted, refused):
        m = Mosquitto(path, self.dir)
        try:
            for user, password in accepted:
                rc, out = m.connects(user, password)
                self.assertEqual(rc, 0, "%s/%s refused: %s" % (user, password, out))
            for user, password in refused:
                rc, out = m.connects(user, password)
                self.assertNotEqual(rc, 0, "%s/%s accepted" % (user, password))
                self.assertIn("not authorised", out)
        finally:
            log = m.stop()
        self.assertNotIn("Error", log)

    def test_midge_passwd_files(self):
        p = self.path()
        self.assertEqual(run(["-c", "-b", p, "alice", "alice-pw"])[0], 0)  # default: 210000 rounds
        self.assertEqual(run(["-H", "sha512", "-b", p, "bob", "bob pw"])[0], 0)
        self.assertEqual(run(["-I", "1000", "-b", p, "carol", "c:a$r"])[0], 0)
        self.assertEqual(run(["-b", p, "alice", "alice-new"])[0], 0)
        self.serve(p, [("alice", "alice-new"), ("bob", "bob pw"), ("carol", "c:a$r")],
                   [("alice", "alice-pw"), ("bob", "bob"), ("nobody", "x")])

    def test_hashed_plain_text_file(self):
        p = self.write("pw", "# from an old setup\nu1:one\nu2:two\n", 0o600)
        self.assertEqual(run(["-I", "50", "-U", p])[0], 0)
        self.serve(p, [("u1", "one"), ("u2", "two")], [("u1", "two")])

    def test_mosquitto_passwd_file_edited(self):
        if not os.access(MOSQUITTO_PASSWD, os.X_OK):
            self.skipTest("no %s" % MOSQUITTO_PASSWD)
        p = self.path()
        for args in (["-c", "-b", p, "m1", "pw1"], ["-H", "sha512", "-b", p, "m2", "pw2"],
                     ["-b", p, "m3", "pw3"]):
            self.assertEqual(run(args, tool=MOSQUITTO_PASSWD)[0], 0)
        before = read_lines(p)
        self.assertEqual(run(["-b", p, "m2", "new2"])[0], 0)
        after = read_lines(p)
        self.assertEqual((after[0], after[2]), (before[0], before[2]))
        self.serve(p, [("m1", "pw1"), ("m2", "new2"), ("m3", "pw3")], [("m2", "pw2")])


if __name__ == "__main__":
    main()
