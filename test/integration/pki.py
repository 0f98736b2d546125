"""The openssl command-line steps the TLS tests share to make throwaway CAs and
certificates (test_tls.py, test_testssl.py, test_examples.py, test_template.py)."""

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


def make_self_signed(cert_path, key_path, names=("mail.contoso.com", "autodiscover.contoso.com"), days=2):
    """A self-signed P-256 certificate for DNS `names` (the first is the subject) and its
    unencrypted key, as PEM files: what an administrator exports from a CAS, for tests."""
    run_openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                "-keyout", str(key_path), "-out", str(cert_path), "-days", str(days),
                "-subj", f"/CN={names[0]}",
                "-addext", "subjectAltName=" + ",".join(f"DNS:{name}" for name in names))
