"""The example configs in conf/examples/ are what the README tells administrators
to start from: each must pass `castellan --check` as shipped, once the files it
names (token, certificate, key, cookie secret) exist beside it, as they would in
/etc/castellan/. --check reads every named file and loads the certificates, so a
typo in a key name, a key that became unknown, or a value out of range fails here.
"""

import json
import os
import secrets
import shutil
import tempfile
import unittest
from pathlib import Path

from harness import REPO, run_cli
from pki import make_self_signed, write_text

EXAMPLES = sorted((REPO / "conf" / "examples").glob("*.json"))


def named_files(config):
    """The relative file names an example config refers to, by kind."""
    files = {"secret": set(), "cert": set(), "key": set(), "ca": set()}
    admin = config.get("admin", {})
    if "token_file" in admin:
        files["secret"].add(admin["token_file"])
    for service in config.get("virtual_services", []):
        persistence = service.get("persistence", {})
        if "cookie_secret_file" in persistence:
            files["secret"].add(persistence["cookie_secret_file"])
        tls = service.get("tls", {})
        for pair in tls.get("certificates", []):
            files["cert"].add(pair["cert"])
            files["key"].add(pair["key"])
        if "ca" in tls.get("upstream", {}):
            files["ca"].add(tls["upstream"]["ca"])
    return files


class ExampleConfigs(unittest.TestCase):
    def test_there_are_examples(self):
        self.assertGreaterEqual(len(EXAMPLES), 2, [e.name for e in EXAMPLES])

    def test_every_example_passes_check(self):
        for example in EXAMPLES:
            with self.subTest(example=example.name):
                folder = Path(tempfile.mkdtemp(prefix="castellan-example-"))
                self.addCleanup(shutil.rmtree, folder, True)
                config = json.loads(example.read_text())
                shutil.copy(example, folder / "castellan.json")
                files = named_files(config)
                for name in files["secret"]:
                    self.assertFalse(os.path.isabs(name), f"{name}: examples name files relative to the config")
                    write_text(folder / name, secrets.token_hex(32) + "\n")
                    os.chmod(folder / name, 0o600)
                for cert, key in zip(sorted(files["cert"]), sorted(files["key"])):
                    make_self_signed(folder / cert, folder / key)
                for ca in files["ca"]:
                    shutil.copy(folder / sorted(files["cert"])[0], folder / ca)
                result = run_cli(["--config", str(folder / "castellan.json"), "--check"])
                self.assertEqual(result.returncode, 0, f"{example.name}:\n{result.stdout}{result.stderr}")


if __name__ == "__main__":
    unittest.main()
