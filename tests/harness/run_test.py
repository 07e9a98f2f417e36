#!/usr/bin/env python3
"""Host-side test of the VM test harness itself (run by `make check`).

Shows that the runner turns each way a test can go wrong into a failure:
first on synthetic guest output (fast, exact), then for real: the harness
binaries in tests/harness/ booted in the VM on a stock kernel, where a
failing Kselftest case, a binary that never reports, and a kernel WARNING
in the guest log must each fail, and a clean binary must pass.

Usage: run_test.py BUILD_DIR KERNEL_RELEASE
"""
import json
import os
import subprocess
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tests", "vm"))
import run  # noqa: E402

BUILD = REL = None

OK_RUN = """MVM BEGIN 6.x mode=check
MVM INSMOD ok
MVM TEST t1 START
TAP version 13
1..2
ok 1 global.a
ok 2 global.b # SKIP no disk
# Totals: pass:1 fail:0 xfail:0 xpass:0 skip:1 error:0
MVM TEST t1 END rc=0
MVM RMMOD ok
MVM DONE
"""


def verdicts(results):
    return {r.name: (r.status, r.detail) for r in results}


class Parser(unittest.TestCase):
    def test_clean_run_passes(self):
        res, _, _ = run.parse(OK_RUN, "", ["t1"])
        v = verdicts(res)
        self.assertEqual(v["t1/global.a"][0], "pass")
        self.assertEqual(v["t1/global.b"][0], "skip")
        self.assertFalse([r for r in res if r.status == "fail"])

    def test_seconds_are_read_with_the_status(self):
        text = OK_RUN.replace("END rc=0", "END rc=0 s=12.5")
        res, _, secs = run.parse(text, "", ["t1"])
        self.assertFalse([r for r in res if r.status == "fail"])
        self.assertEqual(secs, {"t1": 12.5})
        text = OK_RUN.replace("END rc=0", "END rc=1 s=3")
        v = verdicts(run.parse(text, "", ["t1"])[0])
        self.assertEqual(v["t1"][0], "fail")

    def test_failed_case_fails(self):
        text = OK_RUN.replace("ok 1 global.a", "not ok 1 global.a")
        v = verdicts(run.parse(text, "", ["t1"])[0])
        self.assertEqual(v["t1/global.a"][0], "fail")

    def test_binary_that_never_reports_fails(self):
        text = OK_RUN.split("ok 1")[0]      # guest died mid-test
        res, _, _ = run.parse(text, "", ["t1"])
        self.assertIn("t1", verdicts(res))
        self.assertEqual(verdicts(res)["t1"][0], "fail")
        self.assertEqual(verdicts(res)["vm"][0], "fail")

    def test_missing_binary_fails(self):
        v = verdicts(run.parse(OK_RUN, "", ["t1", "t2"])[0])
        self.assertEqual(v["t2"][0], "fail")

    def test_short_plan_fails(self):
        text = OK_RUN.replace("1..2", "1..3")
        v = verdicts(run.parse(text, "", ["t1"])[0])
        self.assertIn("missing results", v["t1"][1])

    def test_guest_kmsg_warning_fails(self):
        text = OK_RUN.replace("MVM RMMOD",
                              "MVM KMSG t1 WARNING: CPU: 1 at x.c:1\nMVM RMMOD")
        v = verdicts(run.parse(text, "", ["t1"])[0])
        self.assertEqual(v["t1"][0], "fail")

    def test_console_oops_fails_the_test_that_ran(self):
        console = ("[1.0] machvm-mark: t1\n[1.1] BUG: kernel NULL pointer "
                   "dereference\n[1.2] machvm-mark: rmmod\n")
        v = verdicts(run.parse(OK_RUN, console, ["t1"])[0])
        self.assertEqual(v["t1"][0], "fail")

    def test_rmmod_failure_fails(self):
        text = OK_RUN.replace("MVM RMMOD ok", "MVM RMMOD fail in use")
        v = verdicts(run.parse(text, "", ["t1"])[0])
        self.assertEqual(v["rmmod"][0], "fail")

    def test_insmod_failure_fails(self):
        text = OK_RUN.replace("MVM INSMOD ok", "MVM INSMOD fail")
        v = verdicts(run.parse(text, "", ["t1"])[0])
        self.assertEqual(v["insmod"][0], "fail")

    # Pair mode (--netdev): each guest must bring its network up.
    def test_pair_net_ok_passes(self):
        text = OK_RUN.replace("MVM INSMOD", "MVM NET ok node=a dev=eth0\n"
                              "MVM INSMOD")
        res, _, _ = run.parse(text, "", ["t1"], net=True)
        self.assertFalse([r for r in res if r.status == "fail"])

    def test_pair_net_failure_fails(self):
        text = OK_RUN.replace("MVM INSMOD", "MVM NET fail peer silent;\n"
                              "MVM INSMOD")
        v = verdicts(run.parse(text, "", ["t1"], net=True)[0])
        self.assertEqual(v["net"][0], "fail")

    def test_pair_net_never_reported_fails(self):
        v = verdicts(run.parse(OK_RUN, "", ["t1"], net=True)[0])
        self.assertEqual(v["net"][0], "fail")

    def test_pair_without_tests_fails(self):
        # No network: /init runs no test; each expected one is missing.
        text = ("MVM BEGIN 6.x mode=pair\nMVM NET fail no network "
                "interface;\nMVM INSMOD ok\nMVM RMMOD ok\nMVM DONE\n")
        v = verdicts(run.parse(text, "", ["t1"], net=True)[0])
        self.assertEqual(v["t1"][0], "fail")
        self.assertEqual(v["net"][0], "fail")

    # A guest that dies before loading machvm is booted again; one that
    # got as far as insmod is judged, never retried.
    def test_boot_crash_is_retried(self):
        console = "[0.5] BUG: unable to handle page fault\n"
        why = run.died_before_module("", console, False)
        self.assertIn("BUG: unable", why)
        why = run.died_before_module("MVM BEGIN 6.x mode=pair\n", "", False)
        self.assertEqual(why, "guest stopped before insmod")
        self.assertEqual(run.died_before_module("", "", False),
                         "no output from /init")

    def test_crash_after_insmod_is_not_retried(self):
        text = OK_RUN.split("ok 1")[0]      # died mid-test
        console = "[9.0] machvm-mark: t1\n[9.1] Oops: 0000\n"
        self.assertIsNone(run.died_before_module(text, console, False))
        text = OK_RUN.replace("MVM INSMOD ok", "MVM INSMOD fail")
        self.assertIsNone(run.died_before_module(text, "", False))

    def test_boot_hang_is_not_retried(self):
        self.assertIsNone(run.died_before_module("", "", True))


class InTheVM(unittest.TestCase):
    """The real thing: boot the harness binaries on a stock kernel."""

    @classmethod
    def setUpClass(cls):
        out = os.path.join(BUILD, "vm", "harness-report")
        os.makedirs(out, exist_ok=True)
        cls.report = os.path.join(out, "report.json")
        env = dict(os.environ, VMTAG="harness-", TESTDIR=os.path.join(BUILD, "tests/harness"),
                   RUN_ARGS=f"--test-timeout 8 --report {cls.report}")
        p = subprocess.run(["bash", os.path.join(ROOT, "scripts/vm.sh"),
                            "check", REL], env=env, capture_output=True,
                           text=True)
        cls.rc = p.returncode
        cls.stdout = p.stdout
        with open(cls.report) as f:
            cls.v = {r["name"]: r for r in json.load(f)}

    def status(self, name):
        self.assertIn(name, self.v, self.stdout)
        return self.v[name]["status"]

    def test_run_fails_overall(self):
        self.assertNotEqual(self.rc, 0)

    def test_failing_kselftest_fails(self):
        self.assertEqual(self.status("harness_fail/global.fails"), "fail")
        self.assertEqual(self.status("harness_fail/global.passes"), "pass")

    def test_silent_test_fails(self):
        self.assertEqual(self.status("harness_hang"), "fail")

    def test_kernel_warning_fails(self):
        self.assertEqual(self.status("harness_warn/global.logs_warning"),
                         "pass")
        self.assertEqual(self.status("harness_warn"), "fail")
        self.assertIn("WARNING", self.v["harness_warn"]["detail"])

    def test_clean_binary_passes(self):
        self.assertEqual(self.status("harness_pass/global.passes"), "pass")
        self.assertNotIn("harness_pass", self.v)

    def test_module_loads_and_unloads(self):
        self.assertNotIn("insmod", self.v)
        self.assertNotIn("rmmod", self.v)
        self.assertNotIn("vm", self.v)


if __name__ == "__main__":
    BUILD, REL = sys.argv[1], sys.argv[2]
    counts = sys.argv[3] if len(sys.argv) > 3 else None
    suite = unittest.TestSuite()
    loader = unittest.TestLoader()
    suite.addTests(loader.loadTestsFromTestCase(Parser))
    suite.addTests(loader.loadTestsFromTestCase(InTheVM))
    r = unittest.TextTestRunner(verbosity=2, stream=sys.stdout).run(suite)
    failed = len(r.failures) + len(r.errors)
    passed = r.testsRun - failed
    print(f"[harness] {passed} passed, {failed} failed")
    if counts:
        with open(counts, "w") as f:
            f.write(f"{passed} {failed} 0\n")
    sys.exit(1 if failed else 0)
