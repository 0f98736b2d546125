"""The Debian package (scripts/package.sh, cmake/debian_package.cmake).

PackageContents builds the .deb from the build under test (or takes
$CASTELLAN_DEB) and reads it without installing anything: the control fields,
the files with their owners and modes, the conffile, the maintainer scripts, the
unit and the config it ships.

PackageInstall installs it on this machine, checks what the maintainer scripts
did and purges it again, checking that nothing is left. It changes the real
system (/usr/bin, /etc, the user database), so it runs only as root, with dpkg,
when asked: CASTELLAN_DEB_INSTALL=1 or CI=true (.ci/run sets the first). It
leaves alone a machine where castellan is installed already. Starting,
reloading and stopping the service is checked only where systemd is PID 1.
"""

import grp
import io
import json
import os
import pwd
import re
import shutil
import subprocess
import tarfile
import tempfile
import unittest
import urllib.request
from pathlib import Path

from harness import REPO, NamedServer, castellan_bin, free_port, wait_for

UNIT = "lib/systemd/system/castellan.service"
CONFIG = "etc/castellan/castellan.json"
SHIPPED_EXAMPLE = REPO / "conf" / "examples" / "exchange2010-rpc-smtp.json"
SCRIPTS = ("postinst", "prerm", "postrm")
INSTALL_TIMEOUT = 120  # apt may wait for another apt's lock (DPkg::Lock::Timeout=60)

_built = {}


def build_dir():
    return Path(castellan_bin()).resolve().parent


def cache_value(name):
    """A CMakeCache.txt value of the build under test, or None."""
    cache = build_dir() / "CMakeCache.txt"
    if not cache.exists():
        return None
    match = re.search(rf"^{name}:[A-Z]+=(.*)$", cache.read_text(), re.M)
    return match.group(1) if match else None


def why_no_package():
    """Why this machine or build cannot make the package, or None."""
    if shutil.which("dpkg-deb") is None:
        return "dpkg-deb is not installed (not a Debian system)"
    if os.environ.get("CASTELLAN_DEB"):
        return None
    if os.environ.get("CASTELLAN_SANITIZED"):
        return "the package is made from the Release build, not the sanitizer build"
    if cache_value("CMAKE_BUILD_TYPE") != "Release" or cache_value("CASTELLAN_SANITIZE") == "ON":
        return f"{build_dir()} is not a plain Release build; the package is made from one"
    return None


def package_path():
    """The .deb under test: $CASTELLAN_DEB, else made by scripts/package.sh from the build under test (once)."""
    if "deb" not in _built:
        given = os.environ.get("CASTELLAN_DEB")
        if given:
            _built["deb"] = Path(given)
        else:
            env = dict(os.environ, BUILD_DIR=str(build_dir()))
            result = subprocess.run([str(REPO / "scripts" / "package.sh")], env=env, capture_output=True,
                                    text=True, timeout=600)
            if result.returncode != 0:
                raise AssertionError(f"scripts/package.sh failed:\n{result.stdout}{result.stderr}")
            _built["deb"] = Path(result.stdout.strip().splitlines()[-1])
    return _built["deb"]


def run(*args, check=True, timeout=60, **kwargs):
    result = subprocess.run(list(args), capture_output=True, text=True, timeout=timeout, **kwargs)
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(args)} exited {result.returncode}:\n{result.stdout}{result.stderr}")
    return result


def project_version():
    """The version castellan reports (CMake's project version): `castellan 0.1.0` -> 0.1.0."""
    return run(castellan_bin(), "--version").stdout.split()[-1]


def data_members(deb):
    """{path without the leading ./: TarInfo} of the files the package installs."""
    data = subprocess.run(["dpkg-deb", "--fsys-tarfile", str(deb)], capture_output=True, check=True,
                          timeout=60).stdout
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        members = {m.name.removeprefix("./").rstrip("/"): m for m in tar.getmembers()}
        contents = {name: tar.extractfile(m).read() for name, m in members.items() if m.isfile()}
    members.pop("", None)
    return members, contents


class PackageContents(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        reason = why_no_package()
        if reason:
            raise unittest.SkipTest(reason)
        cls.deb = package_path()
        cls.members, cls.contents = data_members(cls.deb)
        cls.control_dir = Path(tempfile.mkdtemp(prefix="castellan-deb-control-"))
        try:
            run("dpkg-deb", "--control", str(cls.deb), str(cls.control_dir / "DEBIAN"))
        except BaseException:
            shutil.rmtree(cls.control_dir, True)
            raise

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.control_dir, True)

    def field(self, name):
        return run("dpkg-deb", "--field", str(self.deb), name).stdout.strip()

    def test_control_fields(self):
        self.assertEqual(self.field("Package"), "castellan")
        self.assertEqual(self.field("Version"), project_version() + "-1")
        self.assertEqual(self.field("Section"), "net")
        self.assertEqual(self.field("Architecture"), run("dpkg", "--print-architecture").stdout.strip())
        self.assertRegex(self.field("Maintainer"), r"^[^<>]+ <[^<>@ ]+@[^<>@ ]+>$")
        self.assertIn("Exchange 2010", self.field("Description"))
        # Computed by dpkg-shlibdeps from what the binary links, plus adduser for the postinst.
        depends = {d.split()[0] for d in self.field("Depends").split(", ")}
        for needed in ("adduser", "libc6", "libssl3", "libstdc++6"):
            self.assertIn(needed, depends)
        self.assertTrue(any(d.startswith("libfmt") for d in depends), depends)

    def test_files_owners_and_modes(self):
        expected = {
            "usr/bin/castellan": 0o755,
            UNIT: 0o644,
            "etc/castellan": 0o750,
            CONFIG: 0o640,
            "usr/share/doc/castellan/README.md": 0o644,
        }
        for example in sorted((REPO / "conf" / "examples").glob("*.json")):
            expected[f"usr/share/doc/castellan/examples/{example.name}"] = 0o644
        for path, mode in expected.items():
            with self.subTest(path=path):
                self.assertIn(path, self.members)
                self.assertEqual(oct(self.members[path].mode), oct(mode))
        for path, member in self.members.items():
            with self.subTest(path=path):
                self.assertEqual((member.uname, member.gname, member.uid, member.gid), ("root", "root", 0, 0))
                self.assertFalse(path.startswith("usr/local"), "the package installs under /usr")
                if member.isdir() and path != "etc/castellan":
                    # Folders such as /usr/bin: dpkg would give the system a stricter mode.
                    self.assertEqual(oct(member.mode), oct(0o755))
                elif not member.isdir():
                    self.assertIn(path, expected, "a file the package should not hold")

    def test_binary_runs(self):
        self.assertTrue(self.contents["usr/bin/castellan"].startswith(b"\x7fELF"))
        folder = Path(tempfile.mkdtemp(prefix="castellan-deb-bin-"))
        self.addCleanup(shutil.rmtree, folder, True)
        binary = folder / "castellan"
        binary.write_bytes(self.contents["usr/bin/castellan"])
        binary.chmod(0o755)
        self.assertEqual(run(str(binary), "--version").stdout.strip(), f"castellan {project_version()}")

    def test_config_is_the_rpc_smtp_example(self):
        self.assertEqual(self.contents[CONFIG], SHIPPED_EXAMPLE.read_bytes())
        # The only file it names is the admin token, which the postinst makes.
        config = json.loads(self.contents[CONFIG])
        self.assertEqual(config["admin"]["token_file"], "admin.token")
        self.assertNotIn("tls", json.dumps(config["virtual_services"]))

    def test_conffile(self):
        conffiles = (self.control_dir / "DEBIAN" / "conffiles").read_text().split()
        self.assertEqual(conffiles, ["/" + CONFIG])

    def test_maintainer_scripts(self):
        for name in SCRIPTS:
            with self.subTest(script=name):
                script = self.control_dir / "DEBIAN" / name
                self.assertEqual(oct(script.stat().st_mode & 0o777), oct(0o755))
                self.assertEqual(script.read_bytes(), (REPO / "contrib" / "debian" / name).read_bytes())
                self.assertTrue(script.read_text().startswith("#!/bin/sh\n"))
                run("sh", "-n", str(script))
                # Every call to systemd comes after the guard debhelper uses, in its if block.
                guarded = False
                for line in script.read_text().splitlines():
                    if line.strip() == "if [ -d /run/systemd/system ]; then":
                        guarded, depth = True, len(line) - len(line.lstrip())
                    elif guarded and line.strip() == "fi" and len(line) - len(line.lstrip()) == depth:
                        guarded = False
                    elif re.match(r"\s*(systemctl|deb-systemd-invoke)\b", line):
                        self.assertTrue(guarded, f"{name}: {line.strip()} runs without systemd too")

    def test_unit_runs_the_packaged_binary(self):
        unit = self.contents[UNIT].decode()
        self.assertIn("\nExecStartPre=/usr/bin/castellan --config /etc/castellan/castellan.json --check\n", unit)
        self.assertIn("\nExecStart=/usr/bin/castellan --config /etc/castellan/castellan.json\n", unit)
        self.assertIn("\nUser=castellan\n", unit)
        self.assertNotIn("/usr/local/bin", unit)
        for line in unit.splitlines():
            if line.startswith("Exec") and "castellan" in line:
                self.assertRegex(line, r"^Exec\w+=/usr/bin/castellan ")
        # Apart from a note on top and the path, it is contrib/castellan.service.
        source = (REPO / "contrib" / "castellan.service").read_text().replace("/usr/local/bin", "/usr/bin")
        self.assertTrue(unit.endswith(source))
        note = unit[: len(unit) - len(source)]
        self.assertTrue(all(line.startswith("#") for line in note.splitlines() if line), note)


def why_not_install():
    """Why PackageInstall may not change this machine, or None."""
    reason = why_no_package()
    if reason:
        return reason
    if os.geteuid() != 0:
        return "installing the package needs root"
    if shutil.which("dpkg") is None or shutil.which("apt-get") is None:
        return "dpkg or apt-get is missing"
    if os.environ.get("CASTELLAN_DEB_INSTALL") != "1" and os.environ.get("CI") != "true":
        return ("installs the package into this machine's /usr, /etc and user database, then purges it: "
                "set CASTELLAN_DEB_INSTALL=1 (or CI=true) to allow it")
    status = run("dpkg-query", "-W", "-f=${db:Status-Status}", "castellan", check=False).stdout
    if status not in ("", "not-installed"):
        return f"castellan is on this machine already (dpkg: {status}); the test would replace and purge it"
    for path in ("/etc/castellan", "/usr/bin/castellan", "/" + UNIT):
        if os.path.lexists(path):
            return f"{path} exists; the test would take it over and remove it"
    for lookup in (pwd.getpwnam, grp.getgrnam):
        try:
            lookup("castellan")
            return "a user or group castellan exists; the test would remove it"
        except KeyError:
            pass
    return None


def systemd_is_pid1():
    try:
        return Path("/proc/1/comm").read_text().strip() == "systemd" and Path("/run/systemd/system").is_dir()
    except OSError:
        return False


def castellan_overrides():
    return [line for line in run("dpkg-statoverride", "--list").stdout.splitlines() if "castellan" in line]


class PackageInstall(unittest.TestCase):
    def setUp(self):
        reason = why_not_install()
        if reason:
            self.skipTest(reason)
        self.deb = package_path()
        self.addCleanup(self.purge_if_installed)

    # -- steps

    def install(self):
        """As the README says: apt installs the file and whatever it depends on."""
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        run("apt-get", "install", "-y", "-q", "--no-install-recommends", "-o", "DPkg::Lock::Timeout=60",
            str(self.deb.resolve()), env=env, timeout=INSTALL_TIMEOUT)

    def purge_if_installed(self):
        status = run("dpkg-query", "-W", "-f=${db:Status-Status}", "castellan", check=False).stdout
        if status not in ("", "not-installed"):
            run("dpkg", "--purge", "castellan", check=False, timeout=INSTALL_TIMEOUT)

    def assert_owner_mode(self, path, user, group, mode):
        st = os.lstat(path)
        self.assertEqual((pwd.getpwuid(st.st_uid).pw_name, grp.getgrgid(st.st_gid).gr_name, oct(st.st_mode & 0o7777)),
                         (user, group, oct(mode)), path)

    def assert_installed_state(self):
        user = pwd.getpwnam("castellan")
        self.assertLess(user.pw_uid, 1000, "a system user")
        self.assertEqual(grp.getgrgid(user.pw_gid).gr_name, "castellan")
        self.assertEqual(user.pw_dir, "/nonexistent")
        self.assertFalse(os.path.exists("/nonexistent"))
        self.assertIn(user.pw_shell, ("/usr/sbin/nologin", "/bin/false"))
        self.assert_owner_mode("/etc/castellan", "root", "castellan", 0o750)
        self.assert_owner_mode("/etc/castellan/castellan.json", "root", "castellan", 0o640)
        self.assert_owner_mode("/etc/castellan/admin.token", "root", "castellan", 0o640)
        self.assert_owner_mode("/usr/bin/castellan", "root", "root", 0o755)
        self.assert_owner_mode("/" + UNIT, "root", "root", 0o644)
        self.assertRegex(Path("/etc/castellan/admin.token").read_text(), r"^[0-9a-f]{48}\n$")

    def assert_clean(self):
        status = run("dpkg-query", "-W", "-f=${db:Status-Status}", "castellan", check=False).stdout
        self.assertIn(status, ("", "not-installed"))
        for path in ("/etc/castellan", "/usr/bin/castellan", "/" + UNIT, "/usr/share/doc/castellan",
                     "/etc/systemd/system/multi-user.target.wants/castellan.service"):
            self.assertFalse(os.path.lexists(path), f"{path} is left after the purge")
        with self.assertRaises(KeyError):
            pwd.getpwnam("castellan")
        with self.assertRaises(KeyError):
            grp.getgrnam("castellan")
        self.assertEqual(castellan_overrides(), [])

    # -- tests

    def test_install_check_remove_purge(self):
        self.install()
        self.assert_installed_state()
        self.assertEqual(run("/usr/bin/castellan", "--version").stdout.strip(), f"castellan {project_version()}")
        # The example config passes --check on a fresh host, read as the service reads it: as castellan.
        check = run("runuser", "-u", "castellan", "--", "/usr/bin/castellan",
                    "--config", "/etc/castellan/castellan.json", "--check")
        self.assertIn("ok", check.stdout + check.stderr)
        self.assertEqual(sorted(castellan_overrides()), ["root castellan 640 /etc/castellan/castellan.json",
                                                         "root castellan 750 /etc/castellan"])

        # Installing again runs the postinst as an upgrade: the token handed out is kept.
        token = Path("/etc/castellan/admin.token").read_text()
        run("dpkg", "-i", str(self.deb), timeout=INSTALL_TIMEOUT)
        self.assertEqual(Path("/etc/castellan/admin.token").read_text(), token)
        self.assert_installed_state()

        # systemd's own reading of the installed unit (no running systemd needed):
        # directives it knows, the binary it names there and executable, the
        # user and capabilities it asks for.
        if shutil.which("systemd-analyze"):
            verify = run("systemd-analyze", "verify", "/lib/systemd/system/castellan.service", check=False)
            self.assertEqual(verify.returncode, 0, verify.stdout + verify.stderr)
            self.assertNotIn("castellan.service", verify.stdout + verify.stderr)

        # `systemctl enable` works without a running systemd too (it makes links):
        # the purge must take its link away with the unit.
        if shutil.which("systemctl"):
            run("systemctl", "enable", "castellan.service")
            self.assertTrue(os.path.islink("/etc/systemd/system/multi-user.target.wants/castellan.service"))

        # A remove keeps the config, the token and the user.
        run("dpkg", "--remove", "castellan", timeout=INSTALL_TIMEOUT)
        self.assertFalse(os.path.exists("/usr/bin/castellan"))
        self.assertEqual(Path("/etc/castellan/admin.token").read_text(), token)
        self.assertTrue(os.path.exists("/etc/castellan/castellan.json"))
        pwd.getpwnam("castellan")

        # A purge takes away everything the package made.
        purge = run("dpkg", "--purge", "castellan", timeout=INSTALL_TIMEOUT)
        self.assertNotIn("warning", (purge.stdout + purge.stderr).lower())
        self.assert_clean()

    def test_systemd_start_reload_stop(self):
        if not systemd_is_pid1():
            self.skipTest("systemd is not PID 1 here: systemctl cannot start services")
        cas = NamedServer("cas1")
        self.addCleanup(cas.stop)
        self.addCleanup(run, "systemctl", "stop", "castellan.service", check=False)
        self.install()
        self.assertNotEqual(run("systemctl", "is-active", "castellan.service", check=False).stdout.strip(),
                            "active", "a first install does not start castellan")

        # A config on loopback ports of its own: the shipped example binds 25 and
        # 135, which a test machine may use.
        admin_port, listen_port = free_port(), free_port()

        def write_config(service_name):
            config = {
                "admin": {"listen": f"127.0.0.1:{admin_port}", "token_file": "admin.token"},
                "virtual_services": [{
                    "name": service_name, "listen": f"127.0.0.1:{listen_port}", "mode": "tcp",
                    "scheduler": "round_robin",
                    "real_servers": [{"name": "cas1", "address": f"127.0.0.1:{cas.port}"}],
                    "health_check": {"type": "none"},
                }],
            }
            # Written in place: the file keeps its owner and mode (root:castellan 640).
            with open("/etc/castellan/castellan.json", "w") as f:
                json.dump(config, f)

        def service_names():
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{admin_port}/api/v1/status", timeout=2) as response:
                    return [s["name"] for s in json.loads(response.read())["virtual_services"]]
            except OSError:
                return []

        write_config("before-reload")
        run("systemctl", "start", "castellan.service", timeout=60)
        self.assertEqual(run("systemctl", "is-active", "castellan.service", check=False).stdout.strip(), "active")
        self.assertEqual(wait_for(service_names, timeout=10), ["before-reload"])
        main_pid = run("systemctl", "show", "--property=MainPID", "--value", "castellan.service").stdout.strip()
        self.assertEqual(os.stat(f"/proc/{main_pid}").st_uid, pwd.getpwnam("castellan").pw_uid,
                         "the service runs as the user castellan")

        write_config("after-reload")
        run("systemctl", "reload", "castellan.service", timeout=60)
        self.assertEqual(wait_for(lambda: service_names() == ["after-reload"], timeout=10), True,
                         service_names())
        self.assertEqual(run("systemctl", "show", "--property=MainPID", "--value",
                             "castellan.service").stdout.strip(), main_pid, "a reload keeps the process")

        run("systemctl", "stop", "castellan.service", timeout=60)
        self.assertEqual(run("systemctl", "is-active", "castellan.service", check=False).stdout.strip(), "inactive")
        self.assertTrue(wait_for(lambda: service_names() == [], timeout=5), "the admin API still answers")

        run("dpkg", "--purge", "castellan", timeout=INSTALL_TIMEOUT)
        self.assert_clean()


if __name__ == "__main__":
    unittest.main()
