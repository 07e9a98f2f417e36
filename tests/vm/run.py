#!/usr/bin/env python3
"""Boot a stock Debian kernel with the machvm initramfs under QEMU and judge
what happened.

The guest's /init (tests/vm/init) writes "MVM ..." lines and the raw TAP of
every Kselftest binary to the second serial port; the kernel console goes
to the first.  This script reads both and turns them into results:

  * every Kselftest case ("ok" / "not ok") is one result;
  * a binary that never ends (timeout) or ends without its
    "# Totals:" line, or reports fewer cases than its plan, fails;
  * a binary that exits non-zero without a failed case fails;
  * a kernel Oops / WARNING / BUG / GPF / hung task / panic logged while a
    binary ran fails that binary (the guest marks the log before each one,
    as liburing's runtests.sh does; the console log is a second witness);
  * insmod or rmmod failing, or the guest never finishing, fails the run;
  * with disks attached (--drive), a guest that does not report
    "MVM DISKS ok" (disks found, ext4 mounted) fails the run;
  * with a network (--netdev, pair mode), a guest that does not report
    "MVM NET ok" (interface up, peer answers) fails the run.

A guest that dies before it loads machvm (the stock kernel crashing while
it boots, QEMU dying: no "MVM INSMOD" line, no "MVM DONE", no timeout)
has run none of our code.  Such a boot is tried again, at most
BOOT_ATTEMPTS times in all, and each retry is printed with the reason.
In pair modes the other guest must start again too: with --boot-retry-exit
run.py exits EX_BOOT instead and scripts/vm.sh restarts the pair (and
stops the other guest: run.py stops its QEMU on SIGTERM).

Pair mode is one guest of two (scripts/vm.sh pair starts one run.py per
guest); each is judged like check mode, and the host fails the pair if
either fails.  pairbench mode is the same pair running the pair benchmarks
(tests/vm/pairbench.sh) instead of tests, judged like bench mode; its
output is shown live, each line under the guest's label.

Usage: run.py --kernel-dir DIR --initrd FILE
              --mode check|demo|bench|shell|pair|pairbench
              --out DIR [--timeout S] [--test-timeout S] [--label L]
              [--drive SERIAL=IMAGE]... [--netdev SPEC [--mac MAC]]
"""

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import time

BAD = re.compile(r"Oops|WARNING:|BUG:|general protection fault|"
                 r"blocked for more than|Kernel panic|UBSAN|KASAN|"
                 r"kernel BUG|RCU.*stall|soft lockup")
MARK = re.compile(r"machvm-mark: (\S+)\s*$")
TOTALS = re.compile(r"^# Totals: pass:(\d+) fail:(\d+) xfail:(\d+) "
                    r"xpass:(\d+) skip:(\d+) error:(\d+)")
RESULT = re.compile(r"^(ok|not ok) (\d+) (.*?)\s*$")
PLAN = re.compile(r"^1\.\.(\d+)")
BOOT_ATTEMPTS = 3
EX_BOOT = 75        # pair modes: died before machvm was loaded; retry pair


class Result:
    def __init__(self, name, status, detail=""):
        self.name = name        # "binary/case" or "binary" or a run step
        self.status = status    # "pass", "fail", "skip"
        self.detail = detail

    def __repr__(self):
        return f"Result({self.name!r}, {self.status!r}, {self.detail!r})"


def parse(results_text, console_text, expected, label="", disks=False,
          net=False):
    """Turn the guest's output into a list of Result.

    results_text: what the guest wrote to ttyS1; console_text: ttyS0;
    expected: names of the test binaries put into the initramfs; disks:
    the VM had disks, so the guest must report "MVM DISKS ok"; net: the
    VM had a network (pair mode), so it must report "MVM NET ok".
    """
    out = []
    outputs = {}
    lines = results_text.replace("\r", "").split("\n")
    cur = None
    seen = {}
    kmsg = {}
    insmod = rmmod = done = disk_state = net_state = None
    for line in lines:
        if line.startswith("MVM "):
            f = line.split(" ", 3)
            tag = f[1] if len(f) > 1 else ""
            if tag == "TEST" and len(f) >= 4 and f[3].startswith("START"):
                cur = f[2]
                seen[cur] = {"end": None, "cases": [], "plan": None,
                             "totals": None}
                outputs[cur] = []
            elif tag == "TEST" and len(f) >= 4 and f[3].startswith("END"):
                if f[2] in seen:
                    m = re.search(r"rc=(-?\d+)(?: s=([\d.]+))?", f[3])
                    seen[f[2]]["end"] = int(m.group(1)) if m else -1
                    if m and m.group(2):
                        seen[f[2]]["secs"] = float(m.group(2))
                cur = None
            elif tag == "KMSG" and len(f) >= 3:
                kmsg.setdefault(f[2], []).append(f[3] if len(f) > 3 else "")
            elif tag == "INSMOD":
                insmod = f[2] if len(f) > 2 else "fail"
            elif tag == "RMMOD":
                rmmod = " ".join(f[2:]) if len(f) > 2 else "fail"
            elif tag == "DISKS":
                disk_state = " ".join(f[2:]) if len(f) > 2 else "fail"
            elif tag == "NET":
                net_state = " ".join(f[2:]) if len(f) > 2 else "fail"
            elif tag == "DONE":
                done = True
            continue
        if cur is None:
            continue
        outputs[cur].append(line)
        st = seen[cur]
        m = PLAN.match(line)
        if m and st["plan"] is None:
            st["plan"] = int(m.group(1))
        m = RESULT.match(line)
        if m:
            st["cases"].append((m.group(1), m.group(3)))
        m = TOTALS.match(line)
        if m:
            st["totals"] = [int(x) for x in m.groups()]

    # Second witness: the console log, attributed by the same marks.
    where = "boot"
    for line in console_text.replace("\r", "").split("\n"):
        m = MARK.search(line)
        if m:
            where = m.group(1)
            continue
        if BAD.search(line) and where not in kmsg:
            kmsg.setdefault(where, []).append(line.strip())

    if disks and (disk_state is None or not disk_state.startswith("ok")):
        out.append(Result("disks", "fail",
                          f"guest disks: {disk_state or 'never reported'}"))
    if net and (net_state is None or not net_state.startswith("ok")):
        out.append(Result("net", "fail",
                          f"guest network: {net_state or 'never reported'}"))
    if insmod != "ok":
        out.append(Result("insmod", "fail", f"insmod: {insmod}"))
    for name in expected:
        st = seen.get(name)
        if st is None:
            out.append(Result(name, "fail", "never started (no result)"))
            continue
        nfail = 0
        for verdict, desc in st["cases"]:
            case = desc
            status = "pass"
            if verdict == "not ok":
                status = "fail"
                nfail += 1
            elif "# SKIP" in desc:
                status = "skip"
            case = re.sub(r"\s*#.*$", "", case)
            out.append(Result(f"{name}/{case}", status))
        if st["end"] is None:
            out.append(Result(name, "fail",
                              "did not finish (timeout or VM died)"))
        elif st["end"] == 137:
            out.append(Result(name, "fail", "killed by the test timeout"))
        if st["plan"] is not None and len(st["cases"]) < st["plan"]:
            out.append(Result(name, "fail",
                              f"missing results: {len(st['cases'])} of "
                              f"{st['plan']} reported"))
        if st["totals"] is None and st["end"] is not None:
            out.append(Result(name, "fail", "no '# Totals:' line"))
        if st["end"] not in (None, 0, 137) and nfail == 0:
            out.append(Result(name, "fail",
                              f"exit status {st['end']} with no failed case"))
        if name in kmsg:
            out.append(Result(name, "fail", "kernel reported: " +
                              " | ".join(kmsg[name][:3])))
    for where, msgs in kmsg.items():
        if where not in expected:
            out.append(Result(where, "fail", "kernel reported: " +
                              " | ".join(msgs[:3])))
    if insmod == "ok" and rmmod != "ok":
        out.append(Result("rmmod", "fail", f"rmmod: {rmmod}"))
    if not done:
        out.append(Result("vm", "fail", "guest did not finish"))
    out_secs = {n: st["secs"] for n, st in seen.items() if "secs" in st}
    return out, outputs, out_secs


def died_before_module(results_text, console_text, timed_out):
    """Why the guest died before it loaded machvm, or None.

    None when it got as far as insmod (whatever happened next is ours to
    judge), finished, or hung until the host's timeout (not retried: too
    costly, and a hang is worth a look)."""
    text = results_text.replace("\r", "")
    if timed_out or re.search(r"^MVM (INSMOD|DONE)", text, re.M):
        return None
    for line in console_text.replace("\r", "").split("\n"):
        if BAD.search(line):
            return "kernel: " + line.strip()
    if not re.search(r"^MVM BEGIN", text, re.M):
        return "no output from /init"
    return "guest stopped before insmod"


def find_accel():
    """TCG unless MVM_ACCEL=kvm|tcg says otherwise.

    KVM is not the default: on the build machines here /dev/kvm exists and
    a halted guest starts and quits under it, yet a booting guest dies in
    a KVM emulation failure and QEMU then hangs without output.  A probe
    cannot tell, so KVM is opt-in."""
    return ["-accel", os.environ.get("MVM_ACCEL") or "tcg"]


def qemu_cmd(args, console, results):
    cmdline = ("console=ttyS0 panic=-1 loglevel=6 "
               f"mvm_mode={args.mode} mvm_test_timeout={args.test_timeout} "
               + args.append)
    cmd = ["qemu-system-x86_64", "-nodefaults", "-no-user-config",
           *find_accel(), "-cpu", "max", "-smp", "2",
           "-m", str(args.memory), "-kernel",
           os.path.join(args.kernel_dir, "vmlinuz"), "-initrd", args.initrd,
           "-display", "none", "-no-reboot", "-append", cmdline]
    if args.mode == "shell":
        cmd += ["-serial", "mon:stdio", "-serial", f"file:{results}"]
    else:
        cmd += ["-serial", f"file:{console}", "-serial", f"file:{results}"]
    # Disks: virtio-blk, found by the guest through their serial number.
    # The images are throwaway, so flushes need not reach the host's disk.
    # Pair mode: one virtio-net NIC on a QEMU socket network (guest a
    # listens, guest b connects), with a MAC of its own.
    if args.netdev:
        cmd += ["-netdev", f"{args.netdev},id=n0",
                "-device", "virtio-net-pci,netdev=n0"
                + (f",mac={args.mac}" if args.mac else "")]
    for d in args.drive:
        serial, path = d.split("=", 1)
        cmd += ["-drive", f"file={path},format=raw,if=none,id={serial},"
                "cache=unsafe,aio=threads",
                "-device", f"virtio-blk-pci,drive={serial},serial={serial}"]
    cmd += args.qemu_arg
    return cmd


def boot(args):
    os.makedirs(args.out, exist_ok=True)
    console = os.path.join(args.out, "console.log")
    results = os.path.join(args.out, "results.log")
    for f in (console, results):
        if os.path.exists(f):
            os.unlink(f)
    cmd = qemu_cmd(args, console, results)
    if args.mode == "shell":
        return subprocess.call(cmd), False
    start = time.time()
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL)
    try:
        return watch(args, proc, start, results)
    finally:
        if proc.poll() is None:     # SIGTERM (see main) or an error here
            proc.kill()
            proc.wait()


def watch(args, proc, start, results):
    """Wait for QEMU, showing demo/bench output live, killing it after
    args.timeout.  Returns (seconds, timed out)."""
    shown = 0
    timed_out = False
    while proc.poll() is None:
        time.sleep(0.2)
        if args.mode in ("demo", "bench", "pairbench") \
                and os.path.exists(results):
            with open(results, errors="replace") as f:
                data = f.read()
            # Show the demo live, without the protocol lines.
            for line in data[shown:].splitlines(keepends=True):
                if not line.endswith("\n"):
                    break
                shown += len(line)
                if not line.startswith("MVM "):
                    if args.mode == "pairbench":    # two guests at once
                        line = f"[{args.label}] {line}"
                    sys.stdout.write(line.replace("\r", ""))
            sys.stdout.flush()
        if time.time() - start > args.timeout:
            proc.kill()
            proc.wait()
            timed_out = True
    return time.time() - start, timed_out


def read(path):
    try:
        with open(path, errors="replace") as f:
            return f.read()
    except FileNotFoundError:
        return ""


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--kernel-dir", required=True)
    ap.add_argument("--initrd", required=True)
    ap.add_argument("--mode", default="check",
                    choices=["check", "demo", "bench", "shell", "pair",
                             "pairbench"])
    ap.add_argument("--out", required=True)
    ap.add_argument("--label", default="")
    ap.add_argument("--timeout", type=int, default=1500)
    ap.add_argument("--test-timeout", type=int, default=600)
    ap.add_argument("--memory", type=int, default=2048)
    ap.add_argument("--append", default="")
    ap.add_argument("--expect", default="",
                    help="comma-separated test binaries that must report")
    ap.add_argument("--counts", help="write 'passed failed skipped' here")
    ap.add_argument("--report", help="write every result here as JSON")
    ap.add_argument("--qemu-arg", action="append", default=[])
    ap.add_argument("--drive", action="append", default=[],
                    metavar="SERIAL=IMAGE",
                    help="attach a raw image as a virtio-blk disk")
    ap.add_argument("--netdev", metavar="SPEC",
                    help="a virtio-net NIC on this -netdev (no id=)")
    ap.add_argument("--mac", help="the NIC's MAC address")
    ap.add_argument("--boot-retry-exit", action="store_true",
                    help=f"exit {EX_BOOT} at once if the guest dies "
                    "before it loads machvm (the caller boots again)")
    args = ap.parse_args()
    label = args.label or os.path.basename(args.kernel_dir)

    if args.mode == "shell":
        rc, _ = boot(args)
        return rc

    # vm.sh's pair modes stop a guest whose partner died: take QEMU along.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    for attempt in range(1, BOOT_ATTEMPTS + 1):
        elapsed, timed_out = boot(args)
        console = read(os.path.join(args.out, "console.log"))
        results = read(os.path.join(args.out, "results.log"))
        why = died_before_module(results, console, timed_out)
        if why is None or attempt == BOOT_ATTEMPTS:
            break
        print(f"[{label}] the guest died before machvm was loaded ({why}); "
              + ("the pair must boot again" if args.boot_retry_exit else
                 f"booting again ({attempt + 1} of {BOOT_ATTEMPTS})"))
        if args.boot_retry_exit:
            return EX_BOOT
    expected = [e for e in args.expect.split(",") if e] \
        if args.mode in ("check", "pair") else []
    res, outputs, secs = parse(results, console, expected, label,
                         disks=bool(args.drive), net=bool(args.netdev))
    if timed_out:
        res.append(Result("vm", "fail", f"timed out after {args.timeout}s"))
    if args.mode in ("demo", "bench", "pairbench"):
        m = re.search(rf"^MVM {args.mode} rc=(\S+)", results, re.M)
        if not m or m.group(1) != "0":
            res.append(Result(args.mode, "fail",
                              f"{args.mode} script failed "
                              f"({m.group(1) if m else 'no status'})"))
        else:
            res.append(Result(args.mode, "pass"))

    passed = sum(r.status == "pass" for r in res)
    failed = sum(r.status == "fail" for r in res)
    skipped = sum(r.status == "skip" for r in res)
    for r in res:
        if r.status != "pass" or os.environ.get("V"):
            print(f"  [{label}] {r.status.upper():4} {r.name}"
                  + (f": {r.detail}" if r.detail else ""))
    failed_bins = sorted({r.name.split("/")[0] for r in res
                          if r.status == "fail"})
    for b in failed_bins:
        if b in outputs:
            print(f"---- [{label}] output of {b} ----")
            print("\n".join(outputs[b][-60:]))
    slow = sorted(secs.items(), key=lambda kv: -kv[1])[:5]
    if slow:
        print(f"[{label}] slowest: " +
              ", ".join(f"{n} {s:.0f}s" for n, s in slow))
    print(f"[{label}] {passed} passed, {failed} failed"
          + (f", {skipped} skipped" if skipped else "")
          + f" ({elapsed:.0f}s)")
    if failed:
        print(f"[{label}] full guest console: "
              f"{os.path.join(args.out, 'console.log')}")
    if args.report:
        with open(args.report, "w") as f:
            json.dump([vars(r) for r in res], f, indent=1)
    if args.counts:
        with open(args.counts, "w") as f:
            f.write(f"{passed} {failed} {skipped}\n")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
