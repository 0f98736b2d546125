#!/usr/bin/env python3
"""Fails when a source file includes something its folder may not use (DESIGN.md).

Linking catches a library used without being linked; it does not catch a header-
only include, so this reads every #include of the project's own sources.
Usage: check_includes.py REPO_ROOT
"""
import pathlib
import re
import sys

PROJECT_FOLDERS = ("conf", "persistence", "healthcheck", "tls", "proxy")

# folder -> (project folders it may include, external include prefixes it may not)
RULES = {
    "conf": ({"conf"}, ("boost/", "openssl/", "sys/", "netinet/", "arpa/")),
    "persistence": ({"conf", "persistence"}, ("boost/", "openssl/", "sys/socket", "netinet/", "arpa/")),
    "tls": ({"conf", "tls"}, ("boost/beast",)),
    "healthcheck": ({"conf", "tls", "healthcheck"}, ("boost/beast",)),
    "proxy": (set(PROJECT_FOLDERS), ()),
}

INCLUDE = re.compile(r'^\s*#\s*include\s*[<"]([^>"]+)[>"]')
# persistence/ is given the time; it never reads a clock itself.
CLOCK_CALL = re.compile(r"\b(steady_clock|system_clock|high_resolution_clock)::now\s*\(")


def main() -> int:
    root = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else ".").resolve()
    problems = []
    for folder, (allowed, forbidden_prefixes) in RULES.items():
        for path in sorted((root / folder).rglob("*")):
            if path.suffix not in (".hpp", ".cpp", ".h"):
                continue
            relative = path.relative_to(root)
            for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
                if folder == "persistence" and CLOCK_CALL.search(line):
                    problems.append(f"{relative}:{number}: persistence/ reads a clock (pass the time in)")
                match = INCLUDE.match(line)
                if not match:
                    continue
                target = match.group(1)
                head = target.split("/", 1)[0]
                if head in PROJECT_FOLDERS and "/" in target and head not in allowed:
                    problems.append(f"{relative}:{number}: {folder}/ may not include {target}")
                for prefix in forbidden_prefixes:
                    if target.startswith(prefix):
                        problems.append(f"{relative}:{number}: {folder}/ may not include <{target}>")
    for problem in problems:
        print(problem)
    if problems:
        print(f"{len(problems)} include rule violation(s); see DESIGN.md 'Folders and what each may use'")
        return 1
    print("include rules: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
