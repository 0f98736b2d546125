"""Request smuggling: a differential test of castellan's HTTP mode over smuggling_corpus.py.

Every case's bytes are read twice:

  the reference  a strict HTTP/1.1 request reader written here (RFC 9112), reading
                 the bytes the client sends;
  the origin     a real server behind castellan that reads what castellan passed
                 on with the same strict reader, records each request (method,
                 target, end-to-end fields, body) and answers 200 with
                 "req=<index> sha=<sha256 of the body>", keeping the connection.

The strict reader rejects every ambiguity: Content-Length with Transfer-Encoding,
any coding but a lone `chunked`, Transfer-Encoding in HTTP/1.0, a Content-Length
that is not one plain number, chunk syntax off the grammar, obs-fold, whitespace
before the first field, bare CR or LF, NUL and other controls, field names that
are no token, a missing, repeated or invalid Host, a request-target outside its
form. Its lenient twin applies only what RFC 9112 and 9110 let a recipient do
instead of rejecting: replace obs-fold by SP (9112 §5.2), collapse equal
Content-Length values (9110 §8.6), ignore empty lines before a request-line
(9112 §2.2).

A case passes when castellan either
  refused: answered a 4xx and closed, and the origin saw only requests before
           the bad one, each as the reference read it, each answered in order; or
  passed:  the origin saw exactly the reference's requests (strict, or lenient:
           "normalized"), with no parse error, and the client got exactly one
           answer per request, in order; a request the strict reading rejects
           must then not have reached the origin at all, and castellan must have
           closed the connection (not hung).
Anything else is a desynchronisation or a defect. `valid` cases must pass
unrefused. Cases with `known_issue` are reported as skipped while they fail and
fail once they pass (remove the mark with the fix).

All cases run through one castellan with LANES http services, each in front of
its own origin; a lane runs its cases one after another, each on a fresh client
connection, so that an origin connection always belongs to one case.
"""

import collections
import hashlib
import os
import re
import socket
import sys
import threading
import time
import unittest
from dataclasses import dataclass

from harness import IntegrationTest, TcpServer, connect_via, free_port, make_config, tcp_service, wait_for
from smuggling_corpus import CASES, CATEGORIES, KINDS, PAUSE_S

SLOW = 3.0 if os.environ.get("CASTELLAN_SANITIZED") else 1.0
LANES = 8
GRACE_S = 0.3 * SLOW  # quiet time that ends a case once every expected answer came
CASE_LIMIT_S = 4.0 * SLOW  # the most one case's client waits for answers
ORIGIN_DRAIN_S = 3.0 * SLOW  # for castellan to close its origin connections after the client closed
RUN_LIMIT_S = 150.0 * SLOW  # every lane together
MAX_HEADER_BYTES = 8192  # castellan's http.max_header_bytes here (field-section-over-castellan-limit)

# ---------------------------------------------------------------------------
# The strict reader (RFC 9112), shared by the reference and the origin


class NeedMore(Exception):
    """The bytes so far are a valid beginning; the message is not complete."""


class Malformed(Exception):
    """The bytes can be no valid request: the reason."""


TCHAR = frozenset(b"!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
HEXDIG = frozenset(b"0123456789ABCDEFabcdef")
URI_CHARS = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~!$&'()*+,;=:@/?")
HEAD_LIMIT = 64 * 1024
MAX_UINT64 = 2**64 - 1
TOKEN = rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
QUOTED = rb'"(?:[\t \x21\x23-\x5b\x5d-\x7e\x80-\xff]|\\[\t \x21-\x7e\x80-\xff])*"'
CHUNK_LINE = re.compile(
    rb"([0-9A-Fa-f]+)((?:[ \t]*;[ \t]*" + TOKEN + rb"(?:[ \t]*=[ \t]*(?:" + TOKEN + rb"|" + QUOTED + rb"))?)*)"
)
HOST_VALUE = re.compile(rb"(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9\-._~!$&'()*+,;=%]+)(?::[0-9]*)?")
ABSOLUTE_FORM = re.compile(rb"([A-Za-z][A-Za-z0-9+.\-]*)://([^/?#]*)(.*)", re.S)
VERSION = re.compile(rb"HTTP/([0-9])\.([0-9])")
# Fields that describe one connection (RFC 9110 §7.6.1) or the framing: a proxy
# rewrites them, so they are no part of what a request means end to end.
HOP_BY_HOP = frozenset(
    [b"connection", b"keep-alive", b"proxy-connection", b"te", b"trailer", b"transfer-encoding", b"upgrade",
     b"content-length"]
)
ADDED_BY_PROXY = frozenset([b"x-forwarded-for", b"x-forwarded-proto"])


def is_token(text):
    return bool(text) and all(c in TCHAR for c in text)


def is_field_value(value):
    """VCHAR, obs-text, SP and HTAB only (RFC 9110 §5.5): no NUL, CR, LF, other controls or DEL."""
    return all(c == 0x09 or 0x20 <= c <= 0x7E or c >= 0x80 for c in value)


def is_uri_text(text):
    """RFC 3986 pchar / "/" / "?" with valid percent-escapes."""
    i = 0
    while i < len(text):
        if text[i] == 0x25:  # '%'
            if i + 2 >= len(text):
                return False
            if text[i + 1] not in HEXDIG or text[i + 2] not in HEXDIG:
                return False
            i += 3
            continue
        if text[i] not in URI_CHARS:
            return False
        i += 1
    return True


def is_host(value):
    """uri-host [":" port] (RFC 9110 §7.2), non-empty, no userinfo."""
    match = HOST_VALUE.fullmatch(value)
    return bool(match) and is_uri_text(match.group(1).strip(b"[]"))


def read_line(data, pos, limit):
    """(line without its CRLF, position after it). Bare CR or LF: Malformed (RFC 9112 §2.2)."""
    end = min(len(data), pos + limit + 2)
    for i in range(pos, end):
        c = data[i]
        if c == 0x0A:
            raise Malformed("bare LF")
        if c == 0x0D:
            if i + 1 >= len(data):
                raise NeedMore()
            if data[i + 1] != 0x0A:
                raise Malformed("bare CR")
            return data[pos:i], i + 2
    if end - pos > limit:
        raise Malformed("line too long")
    raise NeedMore()


def read_fields(data, pos, lenient):
    """A field section up to its empty line: ([(name, value)], position after it)."""
    start = pos
    fields = []
    while True:
        line, pos = read_line(data, pos, HEAD_LIMIT)
        if pos - start > HEAD_LIMIT:
            raise Malformed("field section too large")
        if not line:
            return fields, pos
        if line[0] in (0x20, 0x09):
            if not fields:
                raise Malformed("whitespace before the first field line")
            if not lenient:
                raise Malformed("obs-fold")
            piece = line.strip(b" \t")
            if not is_field_value(piece):
                raise Malformed(f"bad octet in a folded value {piece[:40]!r}")
            name, value = fields[-1]
            fields[-1] = (name, value + b" " + piece if value and piece else value + piece)
            continue
        name, colon, value = line.partition(b":")
        if not colon:
            raise Malformed(f"field line without a colon {line[:40]!r}")
        if not is_token(name):
            raise Malformed(f"field name is no token {name[:40]!r}")
        value = value.strip(b" \t")
        if not is_field_value(value):
            raise Malformed(f"bad octet in the value of {name[:40]!r}")
        fields.append((name, value))


def read_chunked(data, pos, lenient):
    """A chunked body (RFC 9112 §7.1): (decoded bytes, position after it). Trailers are
    checked and then discarded (RFC 9110 §6.5.2): they never frame anything."""
    body = bytearray()
    while True:
        line, pos = read_line(data, pos, 4096)
        match = CHUNK_LINE.fullmatch(line)
        if not match:
            raise Malformed(f"bad chunk-size line {line[:40]!r}")
        size = int(match.group(1), 16)
        if size > MAX_UINT64:
            raise Malformed("chunk-size overflows 64 bits")
        if size == 0:
            _, pos = read_fields(data, pos, lenient)
            return bytes(body), pos
        if len(data) - pos < size:
            raise NeedMore()
        body += data[pos:pos + size]
        pos += size
        after = data[pos:pos + 2]
        if after != b"\r\n":
            if after in (b"", b"\r"):
                raise NeedMore()
            raise Malformed(f"chunk data not followed by CRLF: {after!r}")
        pos += 2


def check_target(method, target):
    """The request-target's form must suit its method (RFC 9112 §3.2)."""
    if target == b"*":
        if method != b"OPTIONS":
            raise Malformed("asterisk-form with a method other than OPTIONS")
        return
    if method == b"CONNECT":
        if b":" not in target or not target.rsplit(b":", 1)[1].isdigit() or not is_host(target):
            raise Malformed("CONNECT needs authority-form")
        return
    if target.startswith(b"/"):
        if not is_uri_text(target):
            raise Malformed(f"bad octet in the origin-form target {target[:60]!r}")
        return
    match = ABSOLUTE_FORM.fullmatch(target)
    if not match:
        raise Malformed(f"request-target in no form {target[:60]!r}")
    scheme, authority, rest = match.groups()
    if scheme.lower() not in (b"http", b"https"):
        raise Malformed("absolute-form with a scheme other than http(s)")
    if b"@" in authority:
        raise Malformed("userinfo in the target")
    if not is_host(authority):
        raise Malformed(f"bad authority {authority[:60]!r}")
    if rest and (rest[:1] not in (b"/", b"?") or not is_uri_text(rest)):
        raise Malformed(f"bad path in the absolute-form target {rest[:60]!r}")


@dataclass
class Request:
    method: bytes
    target: bytes
    http10: bool
    fields: list
    body: bytes
    keep_alive: bool

    def values(self, name):
        return [v for n, v in self.fields if n.lower() == name]

    def meaning(self, with_host=True):
        """What must survive a proxy: method, target, body and the end-to-end fields
        (sorted; hop-by-hop ones, those Connection names, and X-Forwarded-* left out)."""
        named = set()
        for value in self.values(b"connection"):
            named.update(t.strip(b" \t").lower() for t in value.split(b","))
        skip = HOP_BY_HOP | ADDED_BY_PROXY | named | (set() if with_host else {b"host"})
        fields = sorted((n.lower(), v) for n, v in self.fields if n.lower() not in skip and not is_lookalike(n))
        return (self.method, self.target, tuple(fields), self.body)

    def short(self):
        return f"{self.method.decode('latin-1')} {self.target.decode('latin-1')} body={self.body[:40]!r}" + (
            f"...({len(self.body)} bytes)" if len(self.body) > 40 else "")


def is_lookalike(name):
    """A name with '_' that reads as a framing, hop-by-hop, Host or X-Forwarded-*
    field once '_' is '-' ("Transfer_Encoding"): castellan drops those on purpose
    (servers that map names to CGI variables cannot tell them apart)."""
    if b"_" not in name:
        return False
    dashed = name.lower().replace(b"_", b"-")
    return dashed in HOP_BY_HOP | ADDED_BY_PROXY | {b"host", b"content-length", b"transfer-encoding"}


def content_length(values, lenient):
    """The one length several Content-Length values may state (RFC 9110 §8.6)."""
    if not lenient:
        if len(values) != 1:
            raise Malformed("more than one Content-Length")
        elements = [values[0]]
    else:
        elements = [e.strip(b" \t") for v in values for e in v.split(b",")]
    numbers = set()
    for element in elements:
        if not re.fullmatch(rb"[0-9]+", element):
            raise Malformed(f"Content-Length is not a number: {element[:40]!r}")
        numbers.add(int(element))
    if len(numbers) != 1:
        raise Malformed("Content-Length values differ")
    length = numbers.pop()
    if length > MAX_UINT64:
        raise Malformed("Content-Length overflows 64 bits")
    return length


def parse_request(data, pos=0, lenient=False):
    """One request from data[pos:]: (Request, position after it).
    Raises NeedMore (a valid beginning) or Malformed."""
    line, pos = read_line(data, pos, HEAD_LIMIT)
    parts = line.split(b" ")
    if len(parts) != 3 or not all(parts):
        raise Malformed(f"request-line is not method SP target SP version: {line[:60]!r}")
    method, target, version = parts
    if not is_token(method):
        raise Malformed(f"method is no token {method[:40]!r}")
    match = VERSION.fullmatch(version)
    if not match or match.group(1) != b"1":
        raise Malformed(f"version {version[:20]!r}")
    http10 = match.group(2) == b"0"  # 1.1 and higher minors read as 1.1 (RFC 9110 §6.2)
    fields, pos = read_fields(data, pos, lenient)
    request = Request(method, target, http10, fields, b"", True)
    hosts = request.values(b"host")
    if len(hosts) > 1 or (not http10 and len(hosts) != 1):
        raise Malformed(f"{len(hosts)} Host fields")
    if hosts and not is_host(hosts[0]):
        raise Malformed(f"invalid Host {hosts[0][:60]!r}")
    check_target(method, target)
    options = []
    for value in request.values(b"connection"):
        for token in (t.strip(b" \t") for t in value.split(b",")):
            if token and not is_token(token):
                raise Malformed(f"Connection option is no token {token[:40]!r}")
            options.append(token.lower())
    if http10:
        request.keep_alive = b"keep-alive" in options and b"close" not in options
    else:
        request.keep_alive = b"close" not in options
    codings = request.values(b"transfer-encoding")
    lengths = request.values(b"content-length")
    if codings:
        if http10:
            raise Malformed("Transfer-Encoding in HTTP/1.0")
        if lengths:
            raise Malformed("Content-Length and Transfer-Encoding")
        if len(codings) != 1 or codings[0].lower() != b"chunked":
            raise Malformed(f"Transfer-Encoding other than chunked: {codings!r}")
        request.body, pos = read_chunked(data, pos, lenient)
    elif lengths:
        length = content_length(lengths, lenient)
        if len(data) - pos < length:
            raise NeedMore()
        request.body = data[pos:pos + length]
        pos += length
    return request, pos


@dataclass
class Reading:
    """How one reader reads a byte stream: its requests and how the reading ended
    ("clean": every byte used; "closed": a request ended the connection; "error";
    "incomplete": the last request is unfinished)."""
    requests: list
    end: str
    detail: str = ""

    def describe(self):
        items = [r.short() for r in self.requests]
        return f"{items} then {self.end}" + (f" ({self.detail})" if self.detail else "")


def read_stream(data, lenient=False):
    requests = []
    pos = 0
    while True:
        if lenient:
            while data.startswith(b"\r\n", pos):
                pos += 2
        if pos >= len(data):
            return Reading(requests, "clean")
        try:
            request, pos = parse_request(data, pos, lenient)
        except NeedMore:
            return Reading(requests, "incomplete", f"{len(data) - pos} bytes wait")
        except Malformed as error:
            return Reading(requests, "error", str(error))
        requests.append(request)
        if not request.keep_alive:
            return Reading(requests, "closed")


def same_request(seen, expected):
    """Whether the origin's request means what the reference read (castellan adds
    Host to an HTTP/1.0 request without one)."""
    return seen.meaning(with_host=bool(expected.values(b"host"))) == expected.meaning()


def answer_body(index, body):
    return f"req={index} sha={hashlib.sha256(body).hexdigest()}\n".encode()


# ---------------------------------------------------------------------------
# The origin


class CaseLog:
    """What one lane's origin saw during one case."""

    def __init__(self, name):
        self.name = name
        self.requests = []
        self.ends = []  # per origin connection: "eof", "incomplete: ...", "error: ...", ...
        self.open = 0


class StrictOrigin(TcpServer):
    """Reads each connection with the strict reader; records every request in the
    current case's log and answers 200 "req=<index> sha=<body sha256>", kept alive.
    A request it cannot read is recorded as an error and the connection closed."""

    max_lifetime = 900.0

    def __init__(self):
        self.log = CaseLog("-")
        super().__init__()

    def begin(self, name):
        with self._lock:
            self.log = CaseLog(name)
            return self.log

    def handle(self, conn):
        with self._lock:
            log = self.log  # the case a connection belongs to is the one running when it came
            log.open += 1
        end = "origin failure: no end recorded"
        try:
            end = self._answer(conn, log)
        except Exception as error:  # a bug of this test, not castellan's: reported as such
            end = f"origin failure: {error!r}"
        finally:
            with self._lock:
                log.ends.append(end)
                log.open -= 1

    def _answer(self, conn, log):
        buf = b""
        while True:
            try:
                request, used = parse_request(buf)
            except NeedMore:
                try:
                    data = self.recv(conn)
                except OSError as error:
                    return f"incomplete: {buf[:80]!r} ({error!r})" if buf else f"reset ({error!r})"
                if data is None:
                    return "stopped"
                if not data:
                    return f"incomplete: {buf[:80]!r}" if buf else "eof"
                buf += data
                continue
            except Malformed as error:
                return f"error: {error}; bytes {buf[:160]!r}"
            buf = buf[used:]
            with self._lock:
                index = len(log.requests)
                log.requests.append(request)
            text = answer_body(index, request.body)
            if not self.sendall(conn, b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(text) + text):
                return "stopped"


# ---------------------------------------------------------------------------
# The client


def parse_responses(buf):
    """([(status, body)], bytes after the last whole response). castellan's own
    answers and the origin's all carry Content-Length."""
    out = []
    pos = 0
    while True:
        end = buf.find(b"\r\n\r\n", pos)
        if end < 0:
            break
        lines = buf[pos:end].split(b"\r\n")
        match = re.fullmatch(rb"HTTP/1\.[01] ([0-9]{3})(?: [^\r\n]*)?", lines[0])
        if not match:
            break
        length = None
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            if name.lower() == b"content-length" and value.strip().isdigit():
                length = int(value.strip())
        if length is None or len(buf) - (end + 4) < length:
            break
        out.append((int(match.group(1)), buf[end + 4:end + 4 + length]))
        pos = end + 4 + length
    return out, buf[pos:]


@dataclass
class Seen:
    responses: list
    leftover: bytes
    how: str  # "eof", "reset", "quiet" (open, nothing more came), "timeout"
    send_error: str
    log: CaseLog
    seconds: float = 0.0


def expected_answers(readings):
    """How many answers to wait for: one per request, plus a refusal where a reading fails."""
    return max(len(r.requests) + (1 if r.end == "error" else 0) for r in readings)


def run_case(port, origin, case, readings):
    """Sends the case on a fresh connection; returns what the client and the origin saw."""
    log = origin.begin(case.name)
    started = time.monotonic()
    send_error = ""
    sock = connect_via(port, timeout=CASE_LIMIT_S)
    buf = bytearray()
    how = "timeout"
    try:
        try:
            for i, part in enumerate(case.parts):
                if i:
                    time.sleep(PAUSE_S)
                sock.sendall(part)
        except OSError as error:  # castellan may refuse and close before a long body is sent
            send_error = repr(error)
        expected = expected_answers(readings)
        deadline = time.monotonic() + CASE_LIMIT_S
        last = time.monotonic()
        while True:
            now = time.monotonic()
            if now >= deadline:
                how = "timeout"
                break
            responses = parse_responses(bytes(buf))[0]
            refusing = responses and 400 <= responses[-1][0] < 500  # then wait for the close, however slow
            if len(responses) >= expected and now - last >= GRACE_S and not refusing:
                how = "quiet"
                break
            sock.settimeout(max(0.01, min(deadline - now, GRACE_S)))
            try:
                chunk = sock.recv(65536)
            except socket.timeout:
                continue
            except (ConnectionResetError, ConnectionAbortedError):
                how = "reset"
                break
            if not chunk:
                how = "eof"
                break
            buf += chunk
            last = time.monotonic()
    finally:
        sock.close()
    # castellan closes its origin connections once the client has gone; only then
    # is the log whole (and the next case may begin on this origin).
    wait_for(lambda: log.open == 0, ORIGIN_DRAIN_S)
    time.sleep(0.02)  # a connection accepted a moment ago may not have reached its handler yet
    responses, leftover = parse_responses(bytes(buf))
    return Seen(responses, leftover, how, send_error, log, time.monotonic() - started)


# ---------------------------------------------------------------------------
# The judgement


def answers_match(responses, requests):
    return len(responses) == len(requests) and all(
        status == 200 and body == answer_body(i, request.body)
        for i, ((status, body), request) in enumerate(zip(responses, requests))
    )


def prefix_matches(seen_requests, reading):
    n = len(seen_requests)
    return n <= len(reading.requests) and all(same_request(s, e) for s, e in zip(seen_requests, reading.requests))


def judge(case, strict, lenient, seen):
    """(verdict, explanation): verdict is "refused", "forwarded", "normalized",
    "waited" (an unfinished last request), "closed" (the bad request reached
    nobody and castellan closed without answering it), or "FAIL"."""
    broken = [e for e in seen.log.ends if e.startswith("origin failure")]
    if broken:
        return "FAIL", f"the test's origin failed (a bug in this test): {broken}"
    origin_errors = [e for e in seen.log.ends if e.startswith("error")]
    if origin_errors:
        return "FAIL", f"the origin's strict reader rejected what castellan passed on: {origin_errors}"
    readings = [("strict", strict)]
    if lenient.describe() != strict.describe():
        readings.append(("normalized", lenient))
    statuses = [status for status, _ in seen.responses]
    ended = seen.how in ("eof", "reset")
    origin = seen.log.requests
    origin_partial = any(e.startswith("incomplete") for e in seen.log.ends)
    if statuses and 400 <= statuses[-1] < 500 and ended and not seen.leftover:
        if case.kind == "valid":
            return "FAIL", f"a valid request was refused with {statuses[-1]}"
        for _, reading in readings:
            if prefix_matches(origin, reading) and answers_match(seen.responses[:-1], reading.requests[:len(origin)]):
                return "refused", f"{statuses[-1]} after {len(origin)} request(s) passed on"
        return "FAIL", "refused, but what reached the origin before is not what the reference read"
    for label, reading in readings:
        if case.kind == "valid" and label != "strict":
            continue
        if len(origin) != len(reading.requests) or not prefix_matches(origin, reading):
            continue
        if not answers_match(seen.responses, reading.requests) or seen.leftover:
            continue
        if origin_partial and reading.end != "incomplete":
            continue
        if reading.end == "error":
            if not ended:
                return "FAIL", (f"castellan neither refused nor closed after a request the {label} reading "
                                f"rejects ({seen.how})")
            return "closed", f"closed without answering the bad request ({reading.detail})"
        if reading.end == "incomplete":
            return "waited", f"{len(origin)} request(s) passed on, then waited for the unfinished one"
        return ("forwarded" if label == "strict" else "normalized"), f"{len(origin)} request(s) passed on as read"
    return "FAIL", mismatch(readings, seen, ended)


def mismatch(readings, seen, ended):
    """Says what went wrong when no reading matches."""
    origin = seen.log.requests
    if not any(prefix_matches(origin, reading) for _, reading in readings):
        return "desynchronised: the origin saw requests other than the reference reads"
    if not any(len(origin) <= len(reading.requests) for _, reading in readings):
        return "desynchronised: the origin saw more requests than the reference reads"
    if not ended:
        return f"castellan hung: {len(seen.responses)} answer(s), then neither refusal nor close ({seen.how})"
    if any(e.startswith("incomplete") for e in seen.log.ends):
        return "castellan passed part of a bad request on, then closed without refusing it"
    return "the client's answers do not match the requests the origin saw"


def report(case, strict, lenient, seen, explanation):
    lines = [
        f"case {case.name} [{case.kind}, {case.category}] - {case.source}",
        f"  bytes sent: {case.data[:600]!r}" + (f" ... ({len(case.data)} bytes)" if len(case.data) > 600 else ""),
        f"  verdict: {explanation}",
        f"  reference (strict):  {strict.describe()}",
    ]
    if lenient.describe() != strict.describe():
        lines.append(f"  reference (lenient): {lenient.describe()}")
    lines += [
        f"  origin saw:          {[r.short() for r in seen.log.requests]}; connections ended {seen.log.ends}",
        f"  client got:          {[(s, b[:60]) for s, b in seen.responses]} leftover {seen.leftover[:200]!r}; "
        f"connection {seen.how} after {seen.seconds:.2f} s"
        + (f"; send failed {seen.send_error}" if seen.send_error else ""),
    ]
    if case.known_issue:
        lines.append(f"  known issue: {case.known_issue}")
    return "\n".join(lines)


# ---------------------------------------------------------------------------
# The tests


class SmugglingCorpus(unittest.TestCase):
    """The corpus and the reference reader, without castellan."""

    def test_corpus_is_large_named_and_sourced(self):
        self.assertGreaterEqual(len(CASES), 100)
        names = [case.name for case in CASES]
        self.assertEqual(len(names), len(set(names)), "case names repeat")
        for case in CASES:
            self.assertIn(case.kind, KINDS, case.name)
            self.assertIn(case.category, CATEGORIES, case.name)
            self.assertTrue(case.source, case.name)
            self.assertTrue(case.data, case.name)
        self.assertGreaterEqual(sum(case.kind == "valid" for case in CASES), 20)

    def test_reference_reads_each_case_as_its_kind(self):
        for case in CASES:
            with self.subTest(case=case.name):
                strict = read_stream(case.data)
                if case.kind in ("valid", "legal"):
                    self.assertIn(strict.end, ("clean", "closed"), strict.describe())
                    self.assertGreater(len(strict.requests), 0)
                elif case.kind == "invalid":
                    self.assertEqual(strict.end, "error", strict.describe())
                else:
                    self.assertEqual(strict.end, "incomplete", strict.describe())
                if case.kind == "valid":
                    self.assertEqual(read_stream(case.data, lenient=True).describe(), strict.describe())

    def test_reference_reads_known_cases_exactly(self):
        by_name = {case.name: case for case in CASES}

        def targets(name, lenient=False):
            return [r.target for r in read_stream(by_name[name].data, lenient).requests]

        self.assertEqual(targets("valid-body-that-looks-like-a-request"), [b"/v", b"/next"])
        self.assertEqual(targets("valid-connection-close-stops-the-stream"), [b"/v"])
        self.assertEqual(targets("valid-http10-post-content-length"), [b"/v"])
        self.assertEqual(targets("te-cl-then-te"), [])
        self.assertEqual(targets("stream-crlf-after-body"), [b"/s"])
        self.assertEqual(targets("stream-crlf-after-body", lenient=True), [b"/s", b"/next"])
        self.assertEqual([r.method for r in read_stream(by_name["cl-underscore-name"].data).requests],
                         [b"POST", b"helloGET"])
        folded = read_stream(by_name["field-obs-fold-space"].data, lenient=True).requests[0]
        self.assertEqual(folded.values(b"x-fold"), [b"one two"])
        self.assertEqual(read_stream(by_name["te-obs-fold-value"].data, lenient=True).requests[0].body, b"abc")
        self.assertEqual(read_stream(by_name["cl-two-fields-equal"].data, lenient=True).requests[0].body, b"hello")
        self.assertEqual(read_stream(by_name["valid-large-chunks"].data).requests[0].body[:4], bytes([0, 7, 14, 21]))
        self.assertEqual(read_stream(by_name["chunk-trailer-content-length"].data).requests[0].body, b"hello")


class SmugglingDifferential(IntegrationTest):
    def test_corpus_through_castellan_without_desync(self):
        started = time.monotonic()
        origins = [self.serve(StrictOrigin()) for _ in range(LANES)]

        ports = []

        def lanes():
            ports[:] = [free_port() for _ in range(LANES)]
            services = [
                tcp_service(f"lane{i}", ports[i], [("origin", origins[i].port)], mode="http",
                            http={"max_header_bytes": MAX_HEADER_BYTES},
                            timeouts={"client_header_ms": int(3000 * SLOW)})
                for i in range(LANES)
            ]
            return make_config(services, threads=2)

        proxy = self.start_on_free_ports(lanes)

        readings = {case.name: (read_stream(case.data), read_stream(case.data, lenient=True)) for case in CASES}
        results = {}
        lock = threading.Lock()

        def lane(i):
            for case in CASES[i::LANES]:
                try:
                    seen = run_case(ports[i], origins[i], case, readings[case.name])
                except Exception as error:  # reported as this case's failure, the lane goes on
                    seen = error
                with lock:
                    results[case.name] = seen

        threads = [threading.Thread(target=lane, args=(i,), name=f"smuggling-lane{i}", daemon=True)
                   for i in range(LANES)]
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + RUN_LIMIT_S
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        self.assertFalse(any(t.is_alive() for t in threads), f"lanes still running after {RUN_LIMIT_S} s")
        crashed = not proxy.running()
        sanitizer = [l for l in proxy.stderr_lines() if "Sanitizer" in l or "runtime error:" in l]

        verdicts = collections.Counter()
        failures, known = [], []
        texts = []
        for case in CASES:
            strict, lenient = readings[case.name]
            seen = results.get(case.name)
            if isinstance(seen, Seen):
                verdict, explanation = judge(case, strict, lenient, seen)
                text = report(case, strict, lenient, seen, f"{verdict}: {explanation}")
            else:
                verdict, text = "FAIL", f"case {case.name}: the client failed: {seen!r}"
            verdicts[verdict] += 1
            texts.append(text)
            with self.subTest(case=case.name):
                if case.known_issue:
                    if verdict == "FAIL":
                        known.append(case.name)
                        self.skipTest(f"known issue: {case.known_issue}")
                    self.fail(f"{case.name} passes now ({verdict}): remove its known_issue mark\n{text}")
                if verdict == "FAIL":
                    failures.append(case.name)
                    self.fail(text)

        seconds = time.monotonic() - started
        summary = (f"smuggling corpus: {len(CASES)} cases in {seconds:.1f} s; "
                   + ", ".join(f"{v} {n}" for v, n in sorted(verdicts.items()) if v != "FAIL")
                   + f"; failing {verdicts['FAIL']}, of them known issues {len(known)}")
        sys.stderr.write("\n" + summary + "\n")
        folder = os.environ.get("CASTELLAN_ARTIFACT_DIR")
        if folder:  # every case's reading and outcome, for whoever fixes one
            os.makedirs(folder, exist_ok=True)
            with open(os.path.join(folder, "smuggling_report.txt"), "w", encoding="utf-8") as out:
                out.write(summary + "\n\n" + "\n\n".join(texts) + "\n")
        self.assertFalse(crashed, "castellan exited during the corpus" + self.log_tail())
        self.assertEqual(sanitizer, [], "sanitizer reports" + self.log_tail())
        self.assertEqual(failures, [], f"{len(failures)} desynchronised or mishandled cases: {failures}\n{summary}")


if __name__ == "__main__":
    unittest.main()
