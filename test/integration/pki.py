"""The openssl command-line steps the TLS tests share to make throwaway CAs and
certificates (test_tls.py, test_testssl.py)."""

import secrets
import subprocess


def run_openssl(*args):
    """Runs `openssl ARGS...`; its stdout, or RuntimeError with its stderr."""
    result = subprocess.run(["openssl", *args], capture_output=True, text=True, timeout=120)
    if result.returncode != 0:
        raise RuntimeError(f"openssl {' '.join(args)} failed:\n{result.stderr}")
    return result.stdout


def write_text(path, text):
    with open(path, "w") as out:
        out.write(text)


def random_serial():
    """A positive random certificate serial number, as text."""
    return str(secrets.randbits(62) | 1)
