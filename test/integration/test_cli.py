"""The command line of INTERFACE.md: --version, --check, exit codes, config errors, bind failures."""

import json
import re
import socket
import unittest

from harness import (
    ConfigDir,
    IntegrationTest,
    NamedServer,
    free_port,
    make_config,
    run_cli,
    tcp_service,
)


def valid_config(listen_port, server_port):
    return make_config([tcp_service("web", listen_port, [("cas1", server_port)])])


class VersionTest(unittest.TestCase):
    def test_version_prints_a_version_and_exits_0(self):
        result = run_cli(["--version"])
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertRegex(result.stdout, r"\d+\.\d+\.\d+", "no version number on stdout")


class CommandLineErrorTest(unittest.TestCase):
    def test_no_arguments_exits_2(self):
        result = run_cli([])
        self.assertEqual(result.returncode, 2, result.stdout + result.stderr)

    def test_unknown_flag_exits_2(self):
        result = run_cli(["--frobnicate"])
        self.assertEqual(result.returncode, 2, result.stdout + result.stderr)

    def test_unknown_flag_with_config_exits_2(self):
        with ConfigDir(valid_config(free_port(), free_port())) as d:
            result = run_cli(["--config", str(d.config_file), "--frobnicate"])
        self.assertEqual(result.returncode, 2, result.stdout + result.stderr)

    def test_config_without_file_exits_2(self):
        result = run_cli(["--config"])
        self.assertEqual(result.returncode, 2, result.stdout + result.stderr)


class CheckTest(IntegrationTest):
    def check(self, config):
        with ConfigDir(config) as d:
            return run_cli(["--config", str(d.config_file), "--check"])

    def assert_error_at(self, result, path):
        """Exit 1 and an error line naming `path`; for a missing or unknown key, a line
        naming the parent path and the key (e.g. `/virtual_services/0: missing "listen"`)
        is accepted too."""
        self.assertEqual(result.returncode, 1, f"expected exit 1; stderr:\n{result.stderr}")
        lines = [l for l in result.stderr.splitlines() if l.strip()]
        parent, _, key = path.rpartition("/")
        parent = parent or "/"

        def names(line):
            return path in line or (parent in line and re.search(rf"\b{re.escape(key)}\b", line))

        self.assertTrue(any(names(l) for l in lines), f"no error line naming {path}; stderr:\n{result.stderr}")

    def test_valid_config_exits_0(self):
        result = self.check(valid_config(free_port(), free_port()))
        self.assertEqual(result.returncode, 0, result.stderr)

    def test_check_binds_nothing_and_contacts_no_server(self):
        # The listen port is held by our own listening socket: a bind would fail,
        # so exit 0 shows --check did not bind. The real server counts connects.
        server = self.serve(NamedServer("cas1"))
        holder = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.addCleanup(holder.close)
        holder.bind(("127.0.0.1", 0))
        holder.listen(1)
        port = holder.getsockname()[1]
        config = valid_config(port, server.port)
        config["virtual_services"][0]["health_check"] = {"type": "tcp", "interval_ms": 100, "timeout_ms": 50}
        result = self.check(config)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(server.connections, 0, "--check connected to a real server")

    def test_invalid_config_one_line_per_error_naming_the_path(self):
        config = valid_config(free_port(), free_port())
        config["virtual_services"][0]["real_servers"][0]["address"] = "cas1"
        config["virtual_services"][0]["scheduler"] = "fastest"
        result = self.check(config)
        self.assert_error_at(result, "/virtual_services/0/real_servers/0/address")
        self.assert_error_at(result, "/virtual_services/0/scheduler")
        lines = [l for l in result.stderr.splitlines() if l.strip()]
        address_lines = [l for l in lines if "/virtual_services/0/real_servers/0/address" in l]
        scheduler_lines = [l for l in lines if "/virtual_services/0/scheduler" in l]
        self.assertEqual(len(address_lines), 1, result.stderr)
        self.assertEqual(len(scheduler_lines), 1, result.stderr)
        self.assertNotEqual(address_lines[0], scheduler_lines[0], "two errors on one line")

    def test_error_names_the_bad_value(self):
        config = valid_config(free_port(), free_port())
        config["virtual_services"][0]["real_servers"][0]["address"] = "cas1"
        result = self.check(config)
        self.assert_error_at(result, "/virtual_services/0/real_servers/0/address")
        self.assertIn("cas1", result.stderr)

    def test_unknown_key_is_an_error(self):
        config = valid_config(free_port(), free_port())
        config["thread"] = 2  # typo of "threads"
        result = self.check(config)
        self.assert_error_at(result, "/thread")

    def test_unknown_key_in_a_service_is_an_error(self):
        config = valid_config(free_port(), free_port())
        config["virtual_services"][0]["sheduler"] = "round_robin"
        result = self.check(config)
        self.assert_error_at(result, "/virtual_services/0/sheduler")

    def test_undefined_persistence_group_is_an_error(self):
        config = valid_config(free_port(), free_port())
        config["virtual_services"][0]["persistence"] = {"type": "source_ip", "group": "rpc"}
        result = self.check(config)
        self.assert_error_at(result, "/virtual_services/0/persistence/group")

    def test_defined_persistence_group_is_fine(self):
        config = valid_config(free_port(), free_port())
        config["persistence_groups"] = {"rpc": {"timeout_s": 600}}
        config["virtual_services"][0]["persistence"] = {"type": "source_ip", "group": "rpc"}
        result = self.check(config)
        self.assertEqual(result.returncode, 0, result.stderr)

    def test_missing_required_key_is_an_error(self):
        config = valid_config(free_port(), free_port())
        del config["virtual_services"][0]["listen"]
        result = self.check(config)
        self.assert_error_at(result, "/virtual_services/0/listen")

    def test_non_integer_is_an_error(self):
        config = valid_config(free_port(), free_port())
        config["virtual_services"][0]["real_servers"][0]["weight"] = 2.5
        result = self.check(config)
        self.assert_error_at(result, "/virtual_services/0/real_servers/0/weight")

    def test_duplicate_service_names_are_an_error(self):
        a, b = free_port(), free_port()
        config = make_config([tcp_service("web", a, [("cas1", free_port())]), tcp_service("web", b, [("cas1", free_port())])])
        result = self.check(config)
        self.assertEqual(result.returncode, 1, result.stderr)
        self.assertRegex(result.stderr, r"/virtual_services/\d/name")

    def test_duplicate_listen_addresses_are_an_error(self):
        port = free_port()
        config = make_config([tcp_service("a", port, [("cas1", free_port())]), tcp_service("b", port, [("cas1", free_port())])])
        result = self.check(config)
        self.assertEqual(result.returncode, 1, result.stderr)
        self.assertRegex(result.stderr, r"/virtual_services/\d/listen")

    def test_empty_real_servers_is_an_error(self):
        config = valid_config(free_port(), free_port())
        config["virtual_services"][0]["real_servers"] = []
        result = self.check(config)
        self.assert_error_at(result, "/virtual_services/0/real_servers")

    def test_malformed_json_exits_1(self):
        result = self.check('{"threads": 2, "virtual_services": [')
        self.assertEqual(result.returncode, 1, result.stderr)
        self.assertTrue(result.stderr.strip(), "no error message")

    def test_duplicate_key_is_an_error(self):
        port, server = free_port(), free_port()
        text = (
            '{"threads": 2, "threads": 3, "virtual_services": ['
            + json.dumps(tcp_service("web", port, [("cas1", server)]))
            + "]}"
        )
        result = self.check(text)
        self.assert_error_at(result, "/threads")

    def test_missing_file_exits_1(self):
        result = run_cli(["--config", "/nonexistent/castellan-it/config.json", "--check"])
        self.assertEqual(result.returncode, 1, result.stderr)
        self.assertTrue(result.stderr.strip(), "no error message")


class RunErrorTest(IntegrationTest):
    def test_run_with_missing_file_exits_1(self):
        result = run_cli(["--config", "/nonexistent/castellan-it/config.json"])
        self.assertEqual(result.returncode, 1, result.stderr)

    def test_run_with_invalid_config_exits_1(self):
        config = valid_config(free_port(), free_port())
        config["virtual_services"][0]["real_servers"][0]["address"] = "cas1"
        with ConfigDir(config) as d:
            result = run_cli(["--config", str(d.config_file)])
        self.assertEqual(result.returncode, 1, result.stderr)
        self.assertIn("/virtual_services/0/real_servers/0/address", result.stderr)

    def test_port_in_use_exits_1(self):
        holder = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.addCleanup(holder.close)
        holder.bind(("127.0.0.1", 0))
        holder.listen(1)
        server = self.serve(NamedServer("cas1"))
        config = valid_config(holder.getsockname()[1], server.port)
        with ConfigDir(config) as d:
            result = run_cli(["--config", str(d.config_file)], timeout=15)
        self.assertEqual(result.returncode, 1, result.stderr)

    def test_port_bound_but_not_listening_exits_1(self):
        holder = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.addCleanup(holder.close)
        holder.bind(("127.0.0.1", 0))
        server = self.serve(NamedServer("cas1"))
        config = valid_config(holder.getsockname()[1], server.port)
        with ConfigDir(config) as d:
            result = run_cli(["--config", str(d.config_file)], timeout=15)
        self.assertEqual(result.returncode, 1, result.stderr)

    def test_second_instance_on_same_ports_exits_1(self):
        server = self.serve(NamedServer("cas1"))
        config = valid_config(free_port(), server.port)
        first = self.start(config)
        with ConfigDir(config) as d:
            result = run_cli(["--config", str(d.config_file)], timeout=15)
        self.assertEqual(result.returncode, 1, f"second castellan did not fail; stderr:\n{result.stderr}")
        self.assertTrue(first.running(), "the first castellan died")

    def test_second_instance_with_more_threads_exits_1(self):
        server = self.serve(NamedServer("cas1"))
        port = free_port()
        self.start(make_config([tcp_service("web", port, [("cas1", server.port)])], threads=1))
        with ConfigDir(make_config([tcp_service("web", port, [("cas1", server.port)])], threads=4)) as d:
            result = run_cli(["--config", str(d.config_file)], timeout=15)
        self.assertEqual(result.returncode, 1, result.stderr)


if __name__ == "__main__":
    unittest.main()
