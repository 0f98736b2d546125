"""The request-smuggling corpus that test_smuggling.py sends through castellan.

Each case is the exact bytes one client connection sends: usually an ambiguous
request followed by an innocent one (NEXT), so that a proxy and a server that
frame the first differently disagree visibly on the second. Every case names
where its trick comes from: a section of RFC 9112 (HTTP/1.1) or RFC 9110 (HTTP
semantics), or published research:

  Linhart, Klein, Heled, Orrin 2005  "HTTP Request Smuggling" (Watchfire)
  Kettle 2019        "HTTP Desync Attacks: Request Smuggling Reborn"
  regilero 2019      "Hiding Wookiees in HTTP" (chunk-size overflows, NULs, bare LF)
  Kettle 2021, 2022  "HTTP/2: The Sequel is Always Worse", "Browser-Powered
                     Desync Attacks" (CL.0, client-side and pause-based desync)
  HTTP Garden        Kallus et al. 2024, differential fuzzing of HTTP processors

`kind` says what the test may accept from castellan:

  valid       legal, ordinary framing: castellan must pass it on, unchanged in
              meaning (it proves castellan does not simply refuse everything)
  legal       legal but unusual (or beyond castellan's limits): passing it on
              as read and refusing it with a 4xx are both fine
  invalid     the strict reading rejects it: castellan refuses it, or passes on
              only what a normalisation RFC 9112 explicitly permits gives
              (obs-fold replaced by SP, equal Content-Length values collapsed,
              empty lines before a request-line ignored)
  incomplete  well-formed so far, but the last request never ends: castellan
              may wait (passing on what it has) or refuse

`known_issue`, when set, says how castellan mishandles the case today; the test
reports such a case as skipped while it still fails, and fails once it passes
(so that the mark is removed with the fix).

`parts`: the bytes in the order sent; between two parts the client pauses
(PAUSE_S), as a slow or deliberately pausing client does.
"""

from dataclasses import dataclass

PAUSE_S = 0.4

CATEGORIES = {
    "valid": "legal framing that must pass",
    "te": "Transfer-Encoding",
    "cl": "Content-Length",
    "chunked": "chunked coding syntax",
    "line": "request-line, method and version",
    "target": "request-target forms",
    "host": "Host",
    "field": "field syntax (names, values, folding, CR, LF, NUL)",
    "stream": "pipelining, pauses, unfinished requests",
}

KINDS = ("valid", "legal", "invalid", "incomplete")


@dataclass(frozen=True)
class Case:
    name: str
    parts: tuple
    source: str
    kind: str
    category: str
    known_issue: str = None

    @property
    def data(self):
        return b"".join(self.parts)


CASES = []


def add(name, data, source, kind, category, known_issue=None):
    parts = tuple(data) if isinstance(data, (list, tuple)) else (data,)
    CASES.append(Case(name, parts, source, kind, category, known_issue))


# Building blocks. H is the Host line every HTTP/1.1 request needs, TE the same
# with chunked framing; NEXT is the innocent request a desync would swallow or
# corrupt (it closes the connection, so a run ends without waiting).
H = b"Host: a.test\r\n"
NEXT = b"GET /next HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n"
TE = H + b"Transfer-Encoding: chunked\r\n"
# A body that a chunked reader ends after "0\r\n\r\n" and a Content-Length: 6
# reader after the "X": whichever reads it wrongly prefixes NEXT with an "X".
CLTE_BODY = b"0\r\n\r\nX"

RFC = "RFC 9112"
SEM = "RFC 9110"
WATCHFIRE = "Linhart, Klein, Heled, Orrin 2005 (Watchfire)"
KETTLE19 = "Kettle 2019, HTTP Desync Attacks"
REGILERO = "regilero 2019, Hiding Wookiees in HTTP"
KETTLE22 = "Kettle 2022, Browser-Powered Desync Attacks"
GARDEN = "HTTP Garden (Kallus et al.)"


def post(target, fields, body=b"", version=b"HTTP/1.1"):
    """A POST head (fields: raw lines, each ending CRLF) and its body, bytes exactly as given."""
    return b"POST " + target + b" " + version + b"\r\n" + fields + b"\r\n" + body


# ---------------------------------------------------------------------------
# valid: tricky but legal framing; castellan must pass every one

add("valid-get-pipelined-three",
    b"GET /v1 HTTP/1.1\r\n" + H + b"\r\nGET /v2 HTTP/1.1\r\n" + H + b"\r\n" + NEXT,
    f"{RFC} §9.3.2 pipelining", "valid", "valid")
add("valid-post-content-length-then-get",
    post(b"/v", H + b"Content-Length: 5\r\n", b"hello") + NEXT,
    f"{RFC} §6.3 (6)", "valid", "valid")
add("valid-post-chunked-then-get",
    post(b"/v", H + b"Transfer-Encoding: chunked\r\n", b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n") + NEXT,
    f"{RFC} §7.1", "valid", "valid")
add("valid-chunk-extensions",
    post(b"/v", H + b"Transfer-Encoding: chunked\r\n", b"5;name=value\r\nhello\r\n0;last\r\n\r\n") + NEXT,
    f"{RFC} §7.1.1 chunk extensions", "valid", "valid")
add("valid-chunk-extension-quoted-string",
    post(b"/v", H + b"Transfer-Encoding: chunked\r\n", b'5;a="b c;d\\"e"\r\nhello\r\n0\r\n\r\n') + NEXT,
    f"{RFC} §7.1.1, {SEM} §5.6.4 quoted-string", "valid", "valid")
add("valid-chunked-trailer-fields",
    post(b"/v", TE, b"5\r\nhello\r\n0\r\nX-Checksum: abc\r\nX-Other: 1\r\n\r\n") + NEXT,
    f"{RFC} §7.1.2 trailer section", "valid", "valid")
add("valid-chunk-size-uppercase-hex",
    post(b"/v", H + b"Transfer-Encoding: chunked\r\n", b"A\r\n0123456789\r\n0\r\n\r\n") + NEXT,
    f"{RFC} §7.1 HEXDIG", "valid", "valid")
add("valid-chunk-size-leading-zeros",
    post(b"/v", H + b"Transfer-Encoding: chunked\r\n", b"0005\r\nhello\r\n0\r\n\r\n") + NEXT,
    f"{RFC} §7.1 chunk-size = 1*HEXDIG", "valid", "valid")
add("valid-one-byte-chunks",
    post(b"/v", TE, b"".join(b"1\r\n" + bytes([c]) + b"\r\n" for c in b"smuggle") + b"0\r\n\r\n") + NEXT,
    f"{RFC} §7.1", "valid", "valid")
add("valid-post-content-length-zero",
    post(b"/v", H + b"Content-Length: 0\r\n") + NEXT,
    f"{RFC} §6.3 (6)", "valid", "valid")
add("valid-get-content-length-zero",
    b"GET /v HTTP/1.1\r\n" + H + b"Content-Length: 0\r\n\r\n" + NEXT,
    f"{RFC} §6.3 (6)", "valid", "valid")
add("valid-get-with-body",
    b"GET /v HTTP/1.1\r\n" + H + b"Content-Length: 5\r\n\r\nhello" + NEXT,
    f"{KETTLE22} (CL.0: a server that ignores a GET's body reads it as a request)", "valid", "valid")
INNER = b"GET /smuggled HTTP/1.1\r\nHost: a.test\r\n\r\n"
add("valid-body-that-looks-like-a-request",
    post(b"/v", H + b"Content-Length: %d\r\n" % len(INNER), INNER) + NEXT,
    f"{KETTLE22} (client-side desync payload, here correctly framed)", "valid", "valid")
add("valid-chunk-that-looks-like-a-request",
    post(b"/v", H + b"Transfer-Encoding: chunked\r\n", b"%x\r\n" % len(INNER) + INNER + b"\r\n0\r\n\r\n") + NEXT,
    f"{KETTLE19} (TE.CL payload, here correctly framed)", "valid", "valid")
add("valid-lowercase-field-names",
    b"POST /v HTTP/1.1\r\nhost: a.test\r\ncontent-length: 3\r\n\r\nabc" + NEXT,
    f"{SEM} §5.1 field names are case-insensitive", "valid", "valid")
add("valid-mixed-case-field-names",
    b"POST /v HTTP/1.1\r\nHoSt: a.test\r\nCONTENT-LENGTH: 3\r\n\r\nabc" + NEXT,
    f"{SEM} §5.1", "valid", "valid")
add("valid-transfer-encoding-mixed-case",
    post(b"/v", H + b"Transfer-Encoding: cHuNkEd\r\n", b"3\r\nabc\r\n0\r\n\r\n") + NEXT,
    f"{RFC} §7 transfer-coding names are case-insensitive; {KETTLE19}", "valid", "valid")
add("valid-transfer-encoding-tab-before-value",
    post(b"/v", H + b"Transfer-Encoding:\tchunked\r\n", b"3\r\nabc\r\n0\r\n\r\n") + NEXT,
    f"{RFC} §5.1 OWS includes HTAB; {KETTLE19} (tab obfuscation)", "valid", "valid")
add("valid-transfer-encoding-trailing-whitespace",
    post(b"/v", H + b"Transfer-Encoding: chunked \t\r\n", b"3\r\nabc\r\n0\r\n\r\n") + NEXT,
    f"{RFC} §5.1 trailing OWS", "valid", "valid")
add("valid-content-length-without-space",
    post(b"/v", H + b"Content-Length:5\r\n", b"hello") + NEXT,
    f"{RFC} §5.1 OWS may be empty", "valid", "valid")
add("valid-http10-post-content-length",
    post(b"/v", b"Content-Length: 5\r\n", b"hello", version=b"HTTP/1.0") + NEXT,
    f"{RFC} §6.3, §9.3 (HTTP/1.0 closes after the response: NEXT is never read)", "valid", "valid")
add("valid-http10-keep-alive-then-http11",
    b"GET /v HTTP/1.0\r\nConnection: keep-alive\r\n\r\n" + NEXT,
    f"{RFC} §9.3 and Appendix C.2.2 keep-alive", "valid", "valid")
add("valid-http10-without-host",
    b"GET /v HTTP/1.0\r\n\r\n",
    f"{RFC} §3.2 (Host is required from HTTP/1.1 on)", "valid", "valid")
add("valid-connection-close-stops-the-stream",
    b"GET /v HTTP/1.1\r\n" + H + b"Connection: close\r\n\r\nGET /never HTTP/1.1\r\n" + H + b"\r\n",
    f"{RFC} §9.6 (nothing after a request with close is read)", "valid", "valid")
add("valid-connection-names-a-field",
    b"GET /v HTTP/1.1\r\n" + H + b"Connection: keep-alive, X-Hop\r\nX-Hop: secret\r\nX-Keep: yes\r\n\r\n" + NEXT,
    f"{SEM} §7.6.1 (fields named by Connection are hop-by-hop)", "valid", "valid")
add("valid-two-connection-fields",
    b"GET /v HTTP/1.1\r\n" + H + b"Connection: keep-alive\r\nConnection: X-A\r\nX-A: 1\r\nX-B: 2\r\n\r\n" + NEXT,
    f"{SEM} §5.3 (a list field may be split over lines)", "valid", "valid")
add("valid-expect-100-continue-body-sent-at-once",
    post(b"/v", H + b"Expect: 100-continue\r\nContent-Length: 5\r\n", b"hello") + NEXT,
    f"{SEM} §10.1.1", "valid", "valid")
add("valid-obs-text-in-value",
    b"GET /v HTTP/1.1\r\n" + H + b"X-Name: caf\xe9 \xff\r\n\r\n" + NEXT,
    f"{RFC} §5, {SEM} §5.5 obs-text", "valid", "valid")
add("valid-empty-field-value",
    b"GET /v HTTP/1.1\r\n" + H + b"X-Empty:\r\nX-Blank:   \r\n\r\n" + NEXT,
    f"{SEM} §5.5 (field-value may be empty)", "valid", "valid")
add("valid-options-asterisk",
    b"OPTIONS * HTTP/1.1\r\n" + H + b"\r\n" + NEXT,
    f"{RFC} §3.2.4 asterisk-form", "valid", "valid")
add("valid-absolute-form",
    b"GET http://a.test/abs?q=1 HTTP/1.1\r\n" + H + b"\r\n" + NEXT,
    f"{RFC} §3.2.2 absolute-form", "valid", "valid")
add("valid-host-with-port",
    b"GET /v HTTP/1.1\r\nHost: a.test:8080\r\n\r\n" + NEXT,
    f"{SEM} §7.2", "valid", "valid")
add("valid-host-ipv6-literal",
    b"GET /v HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n" + NEXT,
    f"{SEM} §7.2, RFC 3986 §3.2.2 IP-literal", "valid", "valid")
add("valid-target-with-sub-delims",
    b"GET /q;p=1/x?a=1&b=%20x;c=(d)*+,$!'~@:/? HTTP/1.1\r\n" + H + b"\r\n" + NEXT,
    f"{RFC} §3.2.1 origin-form, RFC 3986 pchar and query", "valid", "valid")
add("valid-large-content-length-body",
    post(b"/v", H + b"Content-Length: 100000\r\n", bytes(i * 13 & 0xFF for i in range(100000))) + NEXT,
    f"{RFC} §6.3 (a body larger than one read)", "valid", "valid")
BIG = bytes(i * 7 & 0xFF for i in range(20000))
add("valid-large-chunks",
    post(b"/v", H + b"Transfer-Encoding: chunked\r\n", (b"4e20\r\n" + BIG + b"\r\n") * 3 + b"0\r\n\r\n") + NEXT,
    f"{RFC} §7.1 (chunks larger than one read)", "valid", "valid")
add("valid-binary-body-with-nul-and-crlf",
    post(b"/v", H + b"Content-Length: 256\r\n", bytes(range(256))) + NEXT,
    f"{RFC} §6 (content is opaque octets)", "valid", "valid")
add("valid-chunked-get",
    b"GET /v HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n" + NEXT,
    f"{RFC} §6.1 (any request may carry a chunked body)", "valid", "valid")
add("valid-unregistered-method",
    b"FROBNICATE /v HTTP/1.1\r\n" + H + b"Content-Length: 2\r\n\r\nok" + NEXT,
    f"{SEM} §9.1 (method = token)", "valid", "valid")
add("valid-mixed-framing-pipeline",
    post(b"/v1", TE, b"3\r\nabc\r\n0\r\n\r\n") + post(b"/v2", H + b"Content-Length: 3\r\n", b"def") + NEXT,
    f"{RFC} §6.3, §9.3.2", "valid", "valid")
add("valid-chunk-data-holding-crlf",
    post(b"/v", TE, b"5\r\nh\r\nlo\r\n2\r\n\r\n\r\n0\r\n\r\n") + NEXT,
    f"{RFC} §7.1 (chunk-data is opaque: CR and LF inside it are data)", "valid", "valid")
add("valid-repeated-non-framing-fields",
    b"GET /v HTTP/1.1\r\n" + H + b"Cookie: a=1\r\nCookie: b=2\r\nX-Dup: one\r\nX-Dup: two\r\n\r\n" + NEXT,
    f"{SEM} §5.3", "valid", "valid")
add("valid-fifty-fields",
    b"GET /v HTTP/1.1\r\n" + H + b"".join(b"X-F%d: value %d\r\n" % (i, i) for i in range(50)) + b"\r\n" + NEXT,
    f"{RFC} §5", "valid", "valid")

# ---------------------------------------------------------------------------
# te: Transfer-Encoding, alone and against Content-Length

add("te-cl-then-te",
    post(b"/te", H + b"Content-Length: 6\r\nTransfer-Encoding: chunked\r\n", CLTE_BODY) + NEXT,
    f"{RFC} §6.1, §6.3 (3), §11.2; {WATCHFIRE}; {KETTLE19} (CL.TE)", "invalid", "te")
add("te-te-then-cl",
    post(b"/te", H + b"Transfer-Encoding: chunked\r\nContent-Length: 3\r\n", b"8\r\nSMUGGLED\r\n0\r\n\r\n") + NEXT,
    f"{RFC} §6.1, §6.3 (3); {KETTLE19} (TE.CL)", "invalid", "te")
add("te-cl-zero-with-chunked",
    post(b"/te", H + b"Content-Length: 0\r\nTransfer-Encoding: chunked\r\n", b"5\r\nhello\r\n0\r\n\r\n") + NEXT,
    f"{RFC} §6.1", "invalid", "te")
add("te-space-before-colon",
    post(b"/te", H + b"Transfer-Encoding : chunked\r\nContent-Length: 6\r\n", CLTE_BODY) + NEXT,
    f"{RFC} §5.1 (no whitespace between name and colon: 400); {KETTLE19}", "invalid", "te")
add("te-xchunked",
    post(b"/te", H + b"Transfer-Encoding: xchunked\r\nContent-Length: 6\r\n", CLTE_BODY) + NEXT,
    f"{RFC} §6.1 (unknown coding); {KETTLE19}", "invalid", "te")
add("te-xchunked-alone",
    post(b"/te", H + b"Transfer-Encoding: xchunked\r\n", b"3\r\nabc\r\n0\r\n\r\n") + NEXT,
    f"{RFC} §6.1 (unknown coding: 501), without a Content-Length to fall back on", "invalid", "te")
add("te-chunked-then-identity-alone",
    post(b"/te", H + b"Transfer-Encoding: chunked, identity\r\n", b"3\r\nabc\r\n0\r\n\r\n") + NEXT,
    f"{RFC} §6.3 (3) (chunked not final: the body's length is unknown, 400)", "invalid", "te")
add("te-vertical-tab-alone",
    post(b"/te", H + b"Transfer-Encoding:\x0bchunked\r\n", b"3\r\nabc\r\n0\r\n\r\n") + NEXT,
    f"{RFC} §5.5; {KETTLE19}", "invalid", "te")
add("te-tab-with-content-length",
    post(b"/te", H + b"Transfer-Encoding:\tchunked\r\nContent-Length: 6\r\n", CLTE_BODY) + NEXT,
    f"{RFC} §6.1; {KETTLE19} (tab)", "invalid", "te")
add("te-vertical-tab",
    post(b"/te", H + b"Transfer-Encoding: \x0bchunked\r\nContent-Length: 6\r\n", CLTE_BODY) + NEXT,
    f"{RFC} §5.5 (VT is no field-value octet); {KETTLE19}", "invalid", "te")
add("te-form-feed",
    post(b"/te", H + b"Transfer-Encoding:\x0cchunked\r\nContent-Length: 6\r\n", CLTE_BODY) + NEXT,
    f"{RFC} §5.5; {KETTLE19}", "invalid", "te")
add("te-two-fields-chunked",
    post(b"/te", H + b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n", b"3\r\nabc\r\n0\r\n\r\n") + NEXT,
    f"{RFC} §6.1 (chunked applied twice); {KETTLE19} (duplicate TE)", "invalid", "te")
add("te-chunked-twice-in-list",
    post(b"/te", H + b"Transfer-Encoding: chunked, chunked\r\n", b"3\r\nabc\r\n0\r\n\r\n") + NEXT,
    f"{RFC} §6.1 (MUST NOT apply chunked more than once)", "invalid", "te")
add("te-chunked-then-identity",
    post(b"/te", H + b"Transfer-Encoding: chunked, identity\r\nContent-Length: 6\r\n", CLTE_BODY) + NEXT,
    f"{RFC} §6.3 (3) (chunked not final: 400); {KETTLE19}", "invalid", "te")
add("te-identity-then-chunked",
    post(b"/te", H + b"Transfer-Encoding: identity, chunked\r\n", b"3\r\nabc\r\n0\r\n\r\n") + NEXT,
    f"{RFC} §6.1 (identity is no registered coding); {KETTLE19}", "invalid", "te")
add("te-identity-alone",
    post(b"/te", H + b"Transfer-Encoding: identity\r\nContent-Length: 6\r\n", CLTE_BODY) + NEXT,
    f"{RFC} §6.1, §6.3 (3); {WATCHFIRE}", "invalid", "te")
add("te-gzip-then-chunked",
    post(b"/te", H + b"Transfer-Encoding: gzip, chunked\r\n", b"3\r\nabc\r\n0\r\n\r\n") + NEXT,
    f"{RFC} §6.1 (a coding the server does not implement: 501)", "invalid", "te")
add("te-chunked-then-unknown-field",
    post(b"/te", H + b"Transfer-Encoding: chunked\r\nTransfer-Encoding: x\r\nContent-Length: 6\r\n", CLTE_BODY) + NEXT,
    f"{KETTLE19} (duplicate TE, second bogus)", "invalid", "te")
add("te-unknown-then-chunked-field",
    post(b"/te", H + b"Transfer-Encoding: x\r\nTransfer-Encoding: chunked\r\n", b"3\r\nabc\r\n0\r\n\r\n") + NEXT,
    f"{KETTLE19} (duplicate TE, first bogus)", "invalid", "te")
add("te-quoted-chunked",
    post(b"/te", H + b'Transfer-Encoding: "chunked"\r\nContent-Length: 6\r\n', CLTE_BODY) + NEXT,
    f"{RFC} §7 (a coding is a token)", "invalid", "te")
add("te-chunked-with-parameter",
    post(b"/te", H + b"Transfer-Encoding: chunked;q=1\r\n", b"3\r\nabc\r\n0\r\n\r\n") + NEXT,
    f"{RFC} §7 (chunked takes no parameters)", "invalid", "te")
add("te-empty-list-element-first",
    post(b"/te", H + b"Transfer-Encoding: , chunked\r\n", b"3\r\nabc\r\n0\r\n\r\n") + NEXT,
    f"{SEM} §5.6.1 (empty list elements; read differently by different parsers)", "invalid", "te")
add("te-empty-value",
    post(b"/te", H + b"Transfer-Encoding: \r\nContent-Length: 6\r\n", CLTE_BODY) + NEXT,
    f"{RFC} §6.1", "invalid", "te")
add("te-obs-fold-value",
    post(b"/te", H + b"Transfer-Encoding:\r\n chunked\r\n", b"3\r\nabc\r\n0\r\n\r\n") + NEXT,
    f"{RFC} §5.2 obs-fold; {GARDEN} (obs-fold in Transfer-Encoding)", "invalid", "te")
add("te-obs-fold-adds-identity",
    post(b"/te", H + b"Transfer-Encoding: chunked\r\n , identity\r\nContent-Length: 6\r\n", CLTE_BODY) + NEXT,
    f"{RFC} §5.2; {GARDEN}", "invalid", "te")
add("te-leading-space-folds-into-host",
    post(b"/te", H + b" Transfer-Encoding: chunked\r\nContent-Length: 6\r\n", CLTE_BODY) + NEXT,
    f"{RFC} §5.2; {KETTLE19} (space before the name)", "invalid", "te")
add("te-bare-lf-before-name",
    post(b"/te", H + b"X-A: b\nTransfer-Encoding: chunked\r\nContent-Length: 6\r\n", CLTE_BODY) + NEXT,
    f"{RFC} §2.2 bare LF; {KETTLE19}", "invalid", "te")
add("te-bare-lf-after-name",
    post(b"/te", H + b"Transfer-Encoding\n: chunked\r\nContent-Length: 6\r\n", CLTE_BODY) + NEXT,
    f"{RFC} §2.2, §5.1; {KETTLE19}", "invalid", "te")
add("te-http10",
    post(b"/te", b"Transfer-Encoding: chunked\r\n", b"3\r\nabc\r\n0\r\n\r\n", version=b"HTTP/1.0") + NEXT,
    f"{RFC} §6.1 (HTTP/1.0 with TE: framing is faulty)", "invalid", "te")
add("te-http10-with-content-length",
    post(b"/te", b"Content-Length: 6\r\nTransfer-Encoding: chunked\r\nConnection: keep-alive\r\n", CLTE_BODY,
         version=b"HTTP/1.0") + NEXT,
    f"{RFC} §6.1; {WATCHFIRE}", "invalid", "te")
add("te-nul-after-value",
    post(b"/te", H + b"Transfer-Encoding: chunked\x00\r\nContent-Length: 6\r\n", CLTE_BODY) + NEXT,
    f"{RFC} §5.5; {REGILERO} (NUL)", "invalid", "te")
add("te-unicode-kelvin-sign",
    post(b"/te", H + b"Transfer-Encoding: chun\xe2\x84\xaaed\r\nContent-Length: 6\r\n", CLTE_BODY) + NEXT,
    f"{RFC} §7 (K U+212A case-folds to k in some parsers)", "invalid", "te")
add("te-trailing-garbage-token",
    post(b"/te", H + b"Transfer-Encoding: chunked x\r\nContent-Length: 6\r\n", CLTE_BODY) + NEXT,
    f"{RFC} §7", "invalid", "te")
add("te-underscore-name",
    post(b"/te", H + b"Transfer_Encoding: chunked\r\n", b"0\r\n\r\n") + NEXT,
    f"{KETTLE19} (servers that map _ to -); the strict reading: no body, then a bad request-line", "invalid", "te")
add("te-name-with-suffix",
    post(b"/te", H + b"Transfer-Encodingx: chunked\r\nContent-Length: 6\r\n", CLTE_BODY) + NEXT,
    f"{KETTLE19}; an unrelated field: the body is framed by Content-Length", "legal", "te")

# ---------------------------------------------------------------------------
# cl: Content-Length

add("cl-two-fields-differing",
    post(b"/cl", H + b"Content-Length: 6\r\nContent-Length: 5\r\n", b"hello!") + NEXT,
    f"{RFC} §6.3 (5); {WATCHFIRE}", "invalid", "cl")
add("cl-list-differing",
    post(b"/cl", H + b"Content-Length: 6, 5\r\n", b"hello!") + NEXT,
    f"{RFC} §6.3 (5); {KETTLE19}", "invalid", "cl")
add("cl-two-fields-equal",
    post(b"/cl", H + b"Content-Length: 5\r\nContent-Length: 5\r\n", b"hello") + NEXT,
    f"{SEM} §8.6 (reject, or collapse to one value); {KETTLE19}", "invalid", "cl")
add("cl-list-equal",
    post(b"/cl", H + b"Content-Length: 5, 5\r\n", b"hello") + NEXT,
    f"{SEM} §8.6", "invalid", "cl")
add("cl-differing-by-name-case",
    post(b"/cl", H + b"Content-Length: 6\r\ncontent-length: 5\r\n", b"hello!") + NEXT,
    f"{RFC} §6.3 (5); {WATCHFIRE}", "invalid", "cl")
add("cl-plus-sign",
    post(b"/cl", H + b"Content-Length: +6\r\n", b"hello!") + NEXT,
    f"{SEM} §8.6 (1*DIGIT); {KETTLE19}", "invalid", "cl")
add("cl-minus-sign",
    post(b"/cl", H + b"Content-Length: -6\r\n", b"hello!") + NEXT,
    f"{SEM} §8.6; {KETTLE19}", "invalid", "cl")
add("cl-hex",
    post(b"/cl", H + b"Content-Length: 0x6\r\n", b"hello!") + NEXT,
    f"{SEM} §8.6; {KETTLE19}", "invalid", "cl")
add("cl-decimal-point",
    post(b"/cl", H + b"Content-Length: 6.0\r\n", b"hello!") + NEXT,
    f"{SEM} §8.6", "invalid", "cl")
add("cl-exponent",
    post(b"/cl", H + b"Content-Length: 6e0\r\n", b"hello!") + NEXT,
    f"{SEM} §8.6", "invalid", "cl")
add("cl-digits-with-space",
    post(b"/cl", H + b"Content-Length: 1 2\r\n", b"hello!hello!") + NEXT,
    f"{SEM} §8.6", "invalid", "cl")
add("cl-trailing-letter",
    post(b"/cl", H + b"Content-Length: 6a\r\n", b"hello!") + NEXT,
    f"{SEM} §8.6", "invalid", "cl")
add("cl-empty",
    post(b"/cl", H + b"Content-Length:\r\n", b"hello!") + NEXT,
    f"{SEM} §8.6", "invalid", "cl")
add("cl-trailing-comma",
    post(b"/cl", H + b"Content-Length: 6,\r\n", b"hello!") + NEXT,
    f"{SEM} §8.6, §5.6.1", "invalid", "cl")
add("cl-overflow-wraps-to-six",
    post(b"/cl", H + b"Content-Length: 18446744073709551622\r\n", b"hello!") + NEXT,
    f"{SEM} §8.6 (2**64 + 6); {REGILERO} (integer overflow)", "invalid", "cl")
add("cl-space-before-colon",
    post(b"/cl", H + b"Content-Length : 6\r\n", b"hello!") + NEXT,
    f"{RFC} §5.1; {KETTLE19}", "invalid", "cl")
add("cl-tab-before-colon",
    post(b"/cl", H + b"Content-Length\t: 6\r\n", b"hello!") + NEXT,
    f"{RFC} §5.1; {KETTLE19}", "invalid", "cl")
add("cl-vertical-tab",
    post(b"/cl", H + b"Content-Length: \x0b6\r\n", b"hello!") + NEXT,
    f"{RFC} §5.5", "invalid", "cl")
add("cl-nul-after-digits",
    post(b"/cl", H + b"Content-Length: 6\x00\r\n", b"hello!") + NEXT,
    f"{RFC} §5.5; {REGILERO}", "invalid", "cl")
add("cl-obs-fold",
    post(b"/cl", H + b"Content-Length:\r\n 6\r\n", b"hello!") + NEXT,
    f"{RFC} §5.2 obs-fold", "invalid", "cl")
add("cl-leading-zeros",
    post(b"/cl", H + b"Content-Length: 006\r\n", b"hello!") + NEXT,
    f"{SEM} §8.6 (1*DIGIT allows them); {KETTLE19} (octal readings)", "legal", "cl")
add("cl-underscore-name",
    post(b"/cl", H + b"Content_Length: 5\r\n", b"hello") + NEXT,
    f"{KETTLE19} (servers that map _ to -); strictly an unrelated field: no body, then 'helloGET' is a method",
    "legal", "cl")
add("cl-body-shorter-than-declared",
    post(b"/cl", H + b"Content-Length: 10\r\n", b"hello"),
    f"{RFC} §6.3, §8 (incomplete message)", "incomplete", "cl")
add("cl-huge-declared",
    post(b"/cl", H + b"Content-Length: 1000000000000\r\n", b"hello"),
    f"{RFC} §6.3", "incomplete", "cl")

# ---------------------------------------------------------------------------
# chunked: chunk-size, chunk-ext, chunk data and trailer syntax

add("chunk-size-0x-prefix",
    post(b"/ch", TE, b"0x5\r\nhello\r\n0\r\n\r\n") + NEXT,
    f"{RFC} §7.1; {GARDEN}; {REGILERO}", "invalid", "chunked")
add("chunk-size-leading-space",
    post(b"/ch", TE, b" 5\r\nhello\r\n0\r\n\r\n") + NEXT,
    f"{RFC} §7.1; {GARDEN}", "invalid", "chunked")
add("chunk-size-trailing-space",
    post(b"/ch", TE, b"5 \r\nhello\r\n0\r\n\r\n") + NEXT,
    f"{RFC} §7.1 (BWS only before ';'); {GARDEN}", "invalid", "chunked")
add("chunk-size-trailing-tab",
    post(b"/ch", TE, b"5\t\r\nhello\r\n0\r\n\r\n") + NEXT,
    f"{RFC} §7.1; {GARDEN}", "invalid", "chunked")
add("chunk-size-plus-sign",
    post(b"/ch", TE, b"+5\r\nhello\r\n0\r\n\r\n") + NEXT,
    f"{RFC} §7.1", "invalid", "chunked")
add("chunk-size-minus-sign",
    post(b"/ch", TE, b"-5\r\nhello\r\n0\r\n\r\n") + NEXT,
    f"{RFC} §7.1", "invalid", "chunked")
add("chunk-size-empty",
    post(b"/ch", TE, b"\r\nhello\r\n0\r\n\r\n") + NEXT,
    f"{RFC} §7.1", "invalid", "chunked")
add("chunk-size-not-hex",
    post(b"/ch", TE, b"5g\r\nhello\r\n0\r\n\r\n") + NEXT,
    f"{RFC} §7.1", "invalid", "chunked")
add("chunk-size-overflow-wraps-to-five",
    post(b"/ch", TE, b"10000000000000005\r\nhello\r\n0\r\n\r\n") + NEXT,
    f"{RFC} §7.1 (2**64 + 5); {REGILERO} (chunk-size overflow)", "invalid", "chunked")
add("chunk-size-overflow-all-f",
    post(b"/ch", TE, b"fffffffffffffffff\r\nhello\r\n0\r\n\r\n") + NEXT,
    f"{RFC} §7.1; {GARDEN} (huge chunk sizes)", "invalid", "chunked")
add("chunk-size-nul",
    post(b"/ch", TE, b"5\x00\r\nhello\r\n0\r\n\r\n") + NEXT,
    f"{RFC} §7.1; {REGILERO} (NUL)", "invalid", "chunked")
add("chunk-size-bare-lf",
    post(b"/ch", TE, b"5\nhello\r\n0\r\n\r\n") + NEXT,
    f"{RFC} §7.1, §2.2; {REGILERO} (bare LF in chunks)", "invalid", "chunked")
add("chunk-size-bare-cr",
    post(b"/ch", TE, b"5\rhello\r\n0\r\n\r\n") + NEXT,
    f"{RFC} §2.2 bare CR", "invalid", "chunked")
add("chunk-data-bare-lf-after",
    post(b"/ch", TE, b"5\r\nhello\n0\r\n\r\n") + NEXT,
    f"{RFC} §7.1; {REGILERO}", "invalid", "chunked")
add("chunk-data-longer-than-size",
    post(b"/ch", TE, b"5\r\nhelloX\r\n0\r\n\r\n") + NEXT,
    f"{RFC} §7.1", "invalid", "chunked")
add("chunk-data-shorter-than-size",
    post(b"/ch", TE, b"5\r\nhel\r\n0\r\n\r\n") + NEXT,
    f"{RFC} §7.1", "invalid", "chunked")
add("chunk-data-without-crlf",
    post(b"/ch", TE, b"5\r\nhello0\r\n\r\n") + NEXT,
    f"{RFC} §7.1", "invalid", "chunked")
add("chunk-empty-line-between-chunks",
    post(b"/ch", TE, b"5\r\nhello\r\n\r\n0\r\n\r\n") + NEXT,
    f"{RFC} §7.1", "invalid", "chunked")
add("chunk-last-bare-lf",
    post(b"/ch", TE, b"5\r\nhello\r\n0\n\n") + NEXT,
    f"{RFC} §7.1; {REGILERO}", "invalid", "chunked")
add("chunk-missing-final-crlf-then-request",
    post(b"/ch", TE, b"5\r\nhello\r\n0\r\n") + NEXT,
    f"{RFC} §7.1 (the next request-line read as a trailer); {GARDEN}", "invalid", "chunked")
add("chunk-ext-empty-name",
    post(b"/ch", TE, b"5;\r\nhello\r\n0\r\n\r\n") + NEXT,
    f"{RFC} §7.1.1", "invalid", "chunked")
add("chunk-ext-nul",
    post(b"/ch", TE, b"5;a\x00b\r\nhello\r\n0\r\n\r\n") + NEXT,
    f"{RFC} §7.1.1; {REGILERO}", "invalid", "chunked")
add("chunk-ext-bare-cr",
    post(b"/ch", TE, b"5;a=b\rc\r\nhello\r\n0\r\n\r\n") + NEXT,
    f"{RFC} §2.2, §7.1.1", "invalid", "chunked")
add("chunk-ext-bare-lf-in-quotes",
    post(b"/ch", TE, b'5;a="x\ny"\r\nhello\r\n0\r\n\r\n') + NEXT,
    f"{RFC} §7.1.1; {REGILERO}", "invalid", "chunked")
add("chunk-ext-unterminated-quote",
    post(b"/ch", TE, b'5;a="b\r\nhello\r\n0\r\n\r\n') + NEXT,
    f"{RFC} §7.1.1", "invalid", "chunked")
add("chunk-ext-space-in-value",
    post(b"/ch", TE, b"5;a=b c\r\nhello\r\n0\r\n\r\n") + NEXT,
    f"{RFC} §7.1.1", "invalid", "chunked")
add("chunk-ext-over-any-limit",
    post(b"/ch", TE, b"5;" + b"e" * 100000 + b"\r\nhello\r\n0\r\n\r\n") + NEXT,
    f"{RFC} §7.1.1 (a server ought to limit chunk extensions and answer 4xx beyond)", "invalid", "chunked")
add("chunk-line-never-ends",
    post(b"/ch", TE, b"5;a" + b"a" * 100000),
    f"{RFC} §7.1.1; a chunk-size line that never ends must not be buffered without limit", "invalid", "chunked")
add("chunk-trailer-over-any-limit",
    post(b"/ch", TE, b"5\r\nhello\r\n0\r\nX-T: " + b"t" * 100000 + b"\r\n\r\n") + NEXT,
    f"{RFC} §7.1.2, {SEM} §6.5 (a trailer section is limited like a header section)", "invalid", "chunked")
add("chunk-ext-bad-whitespace-before-semicolon",
    post(b"/ch", TE, b"5 ;a=b\r\nhello\r\n0\r\n\r\n") + NEXT,
    f"{RFC} §7.1.1 (BWS is in the grammar); {GARDEN}", "legal", "chunked")
add("chunk-size-many-leading-zeros",
    post(b"/ch", TE, b"00000000000000000005\r\nhello\r\n0\r\n\r\n") + NEXT,
    f"{RFC} §7.1 (1*HEXDIG; longer than 16 digits yet small)", "legal", "chunked")
add("chunk-last-several-zeros",
    post(b"/ch", TE, b"5\r\nhello\r\n000\r\n\r\n") + NEXT,
    f"{RFC} §7.1 last-chunk = 1*(\"0\")", "legal", "chunked")
add("chunk-bytes-after-last-chunk",
    post(b"/ch", TE, b"5\r\nhello\r\n0\r\n\r\nSMUGGLED") + NEXT,
    f"{KETTLE19} (what follows the last chunk is the next request: here a legal method SMUGGLEDGET)",
    "legal", "chunked")
add("chunk-trailer-no-colon",
    post(b"/ch", TE, b"5\r\nhello\r\n0\r\nX-Bad\r\n\r\n") + NEXT,
    f"{RFC} §7.1.2, §5", "invalid", "chunked")
add("chunk-trailer-space-before-colon",
    post(b"/ch", TE, b"5\r\nhello\r\n0\r\nX-T : a\r\n\r\n") + NEXT,
    f"{RFC} §5.1", "invalid", "chunked")
add("chunk-trailer-bare-lf",
    post(b"/ch", TE, b"5\r\nhello\r\n0\r\nX-T: a\n\r\n") + NEXT,
    f"{RFC} §2.2", "invalid", "chunked")
add("chunk-trailer-obs-fold",
    post(b"/ch", TE, b"5\r\nhello\r\n0\r\nX-T: a\r\n b\r\n\r\n") + NEXT,
    f"{RFC} §5.2", "invalid", "chunked")
add("chunk-trailer-content-length",
    post(b"/ch", TE, b"5\r\nhello\r\n0\r\nContent-Length: 50\r\n\r\n") + NEXT,
    f"{SEM} §6.5.1 (framing fields cannot be trailers; a recipient discards them); {GARDEN}", "legal", "chunked")
add("chunk-trailer-transfer-encoding",
    post(b"/ch", TE, b"5\r\nhello\r\n0\r\nTransfer-Encoding: chunked\r\n\r\n") + NEXT,
    f"{SEM} §6.5.1; {GARDEN}", "legal", "chunked")
add("chunk-missing-final-crlf-at-end",
    post(b"/ch", TE, b"5\r\nhello\r\n0\r\n"),
    f"{RFC} §7.1; {GARDEN} (missing final CRLF)", "incomplete", "chunked")
add("chunk-without-last-chunk",
    post(b"/ch", TE, b"5\r\nhello\r\n"),
    f"{RFC} §7.1, §8", "incomplete", "chunked")

# ---------------------------------------------------------------------------
# line: the request-line, its method and its version

add("line-double-space-before-target",
    b"GET  /l HTTP/1.1\r\n" + H + b"\r\n" + NEXT,
    f"{RFC} §3 (single SP); {GARDEN}", "invalid", "line")
add("line-double-space-before-version",
    b"GET /l  HTTP/1.1\r\n" + H + b"\r\n" + NEXT,
    f"{RFC} §3", "invalid", "line")
add("line-trailing-space",
    b"GET /l HTTP/1.1 \r\n" + H + b"\r\n" + NEXT,
    f"{RFC} §3", "invalid", "line")
add("line-tabs-as-separators",
    b"GET\t/l\tHTTP/1.1\r\n" + H + b"\r\n" + NEXT,
    f"{RFC} §3", "invalid", "line")
add("line-leading-space",
    b" GET /l HTTP/1.1\r\n" + H + b"\r\n" + NEXT,
    f"{RFC} §3", "invalid", "line")
add("line-ends-in-bare-lf",
    b"GET /l HTTP/1.1\n" + H + b"\r\n" + NEXT,
    f"{RFC} §2.2 bare LF", "invalid", "line")
add("line-all-bare-lf",
    b"GET /l HTTP/1.1\nHost: a.test\n\n" + NEXT,
    f"{RFC} §2.2", "invalid", "line")
add("line-ends-in-bare-cr",
    b"GET /l HTTP/1.1\rHost: a.test\r\n\r\n" + NEXT,
    f"{RFC} §2.2 bare CR", "invalid", "line")
add("line-http09-style",
    b"GET /l\r\n\r\n" + NEXT,
    f"{RFC} Appendix C.1 (HTTP/0.9)", "invalid", "line")
add("version-1-10",
    b"GET /l HTTP/1.10\r\n" + H + b"\r\n" + NEXT,
    f"{RFC} §2.3 (HTTP-version = DIGIT . DIGIT)", "invalid", "line")
add("version-leading-zero-major",
    b"GET /l HTTP/01.1\r\n" + H + b"\r\n" + NEXT,
    f"{RFC} §2.3", "invalid", "line")
add("version-2-0-over-http1",
    b"GET /l HTTP/2.0\r\n" + H + b"\r\n" + NEXT,
    f"{RFC} §2.3, {SEM} §15.6.6 (505)", "invalid", "line")
add("version-3-0",
    b"GET /l HTTP/3.0\r\n" + H + b"\r\n" + NEXT,
    f"{SEM} §6.2", "invalid", "line")
add("version-0-9",
    b"GET /l HTTP/0.9\r\n" + H + b"\r\n" + NEXT,
    f"{SEM} §6.2", "invalid", "line")
add("version-lowercase",
    b"GET /l http/1.1\r\n" + H + b"\r\n" + NEXT,
    f"{RFC} §2.3 (HTTP-name is case-sensitive)", "invalid", "line")
add("version-without-minor",
    b"GET /l HTTP/1\r\n" + H + b"\r\n" + NEXT,
    f"{RFC} §2.3", "invalid", "line")
add("version-three-parts",
    b"GET /l HTTP/1.1.1\r\n" + H + b"\r\n" + NEXT,
    f"{RFC} §2.3", "invalid", "line")
add("version-1-2",
    b"GET /l HTTP/1.2\r\n" + H + b"\r\n" + NEXT,
    f"{SEM} §6.2 (a higher minor version is read as 1.1)", "legal", "line")
add("version-h2-preface",
    b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + NEXT,
    "RFC 9113 §3.4 (prior-knowledge HTTP/2 over an HTTP/1.1 port)", "invalid", "line")
add("method-with-space",
    b"G ET /l HTTP/1.1\r\n" + H + b"\r\n" + NEXT,
    f"{SEM} §9.1 (method = token)", "invalid", "line")
add("method-with-nul",
    b"GE\x00T /l HTTP/1.1\r\n" + H + b"\r\n" + NEXT,
    f"{SEM} §9.1; {REGILERO}", "invalid", "line")
add("method-non-ascii",
    b"G\xc9T /l HTTP/1.1\r\n" + H + b"\r\n" + NEXT,
    f"{SEM} §9.1", "invalid", "line")
add("method-separator-char",
    b"GE(T /l HTTP/1.1\r\n" + H + b"\r\n" + NEXT,
    f"{SEM} §5.6.2 tchar", "invalid", "line")
add("method-lowercase",
    b"get /l HTTP/1.1\r\n" + H + b"\r\n" + NEXT,
    f"{SEM} §9.1 (case-sensitive: an unknown but legal method)", "legal", "line")

# ---------------------------------------------------------------------------
# target: request-target forms (RFC 9112 §3.2)

add("target-asterisk-with-get",
    b"GET * HTTP/1.1\r\n" + H + b"\r\n" + NEXT,
    f"{RFC} §3.2.4 (asterisk-form only for OPTIONS)", "invalid", "target")
add("target-authority-form-with-get",
    b"GET a.test:80 HTTP/1.1\r\n" + H + b"\r\n" + NEXT,
    f"{RFC} §3.2.3 (authority-form only for CONNECT)", "invalid", "target")
add("target-authority-form-connect",
    b"CONNECT a.test:443 HTTP/1.1\r\nHost: a.test:443\r\n\r\n" + NEXT,
    f"{RFC} §3.2.3 (legal; a gateway may refuse to tunnel)", "legal", "target")
add("target-relative-path",
    b"GET l/x HTTP/1.1\r\n" + H + b"\r\n" + NEXT,
    f"{RFC} §3.2", "invalid", "target")
add("target-fragment",
    b"GET /l#frag HTTP/1.1\r\n" + H + b"\r\n" + NEXT,
    f"{RFC} §3.2.1 (origin-form has no fragment)", "invalid", "target")
add("target-bad-percent-escape",
    b"GET /l%zz HTTP/1.1\r\n" + H + b"\r\n" + NEXT,
    f"{RFC} §3.2.1, RFC 3986 §2.1", "invalid", "target")
add("target-backslash",
    b"GET /l\\x HTTP/1.1\r\n" + H + b"\r\n" + NEXT,
    "RFC 3986 §3.3", "invalid", "target")
add("target-braces",
    b"GET /l{x} HTTP/1.1\r\n" + H + b"\r\n" + NEXT,
    "RFC 3986 §3.3", "invalid", "target")
add("target-del",
    b"GET /l\x7f HTTP/1.1\r\n" + H + b"\r\n" + NEXT,
    f"{RFC} §3.2", "invalid", "target")
add("target-non-ascii",
    b"GET /caf\xc3\xa9 HTTP/1.1\r\n" + H + b"\r\n" + NEXT,
    f"{RFC} §3.2, RFC 3986 §2", "invalid", "target")
add("target-nul",
    b"GET /l\x00x HTTP/1.1\r\n" + H + b"\r\n" + NEXT,
    f"{RFC} §3.2; {REGILERO}", "invalid", "target")
add("target-space-in-query",
    b"GET /l?a b HTTP/1.1\r\n" + H + b"\r\n" + NEXT,
    f"{RFC} §3.2", "invalid", "target")
add("target-absolute-ftp-scheme",
    b"GET ftp://a.test/l HTTP/1.1\r\n" + H + b"\r\n" + NEXT,
    f"{RFC} §3.2.2 (not a scheme this origin serves)", "invalid", "target")
add("target-absolute-userinfo",
    b"GET http://user:pw@a.test/l HTTP/1.1\r\n" + H + b"\r\n" + NEXT,
    f"{SEM} §4.2.4 (userinfo: treat as an error)", "invalid", "target")
add("target-absolute-empty-host",
    b"GET http:///l HTTP/1.1\r\n" + H + b"\r\n" + NEXT,
    f"{SEM} §4.2.1 (an http URI with an empty host is invalid)", "invalid", "target")
add("target-absolute-without-host-field",
    b"GET http://a.test/l HTTP/1.1\r\n\r\n" + NEXT,
    f"{RFC} §3.2 (HTTP/1.1 needs Host even with absolute-form)", "invalid", "target")
add("target-absolute-host-mismatch",
    b"GET http://b.test/l HTTP/1.1\r\n" + H + b"\r\n" + NEXT,
    f"{RFC} §3.2.2 (the target's authority wins over Host)", "legal", "target")
add("target-absolute-uppercase-scheme",
    b"GET HTTP://A.TEST/l HTTP/1.1\r\n" + H + b"\r\n" + NEXT,
    "RFC 3986 §3.1 (scheme is case-insensitive)", "legal", "target")
add("target-double-slash",
    b"GET //l/x HTTP/1.1\r\n" + H + b"\r\n" + NEXT,
    f"{RFC} §3.2.1 (absolute-path allows empty segments)", "legal", "target")

# ---------------------------------------------------------------------------
# host: the Host field (RFC 9110 §7.2, RFC 9112 §3.2)

add("host-missing-in-http11",
    b"GET /h HTTP/1.1\r\n\r\n" + NEXT,
    f"{RFC} §3.2 (400)", "invalid", "host")
add("host-twice-same",
    b"GET /h HTTP/1.1\r\n" + H + H + b"\r\n" + NEXT,
    f"{RFC} §3.2 (more than one Host: 400)", "invalid", "host")
add("host-twice-different",
    b"GET /h HTTP/1.1\r\n" + H + b"Host: b.test\r\n\r\n" + NEXT,
    f"{RFC} §3.2; {WATCHFIRE}", "invalid", "host")
add("host-empty",
    b"GET /h HTTP/1.1\r\nHost:\r\n\r\n" + NEXT,
    f"{SEM} §4.2.1, §7.2 (an http target needs a host)", "invalid", "host")
add("host-space-inside",
    b"GET /h HTTP/1.1\r\nHost: a b.test\r\n\r\n" + NEXT,
    f"{SEM} §7.2", "invalid", "host")
add("host-with-path",
    b"GET /h HTTP/1.1\r\nHost: a.test/x\r\n\r\n" + NEXT,
    f"{SEM} §7.2", "invalid", "host")
add("host-with-userinfo",
    b"GET /h HTTP/1.1\r\nHost: u@a.test\r\n\r\n" + NEXT,
    f"{SEM} §7.2", "invalid", "host")
add("host-bad-port",
    b"GET /h HTTP/1.1\r\nHost: a.test:8o\r\n\r\n" + NEXT,
    f"{SEM} §7.2, RFC 3986 §3.2.3", "invalid", "host")
add("host-non-ascii",
    b"GET /h HTTP/1.1\r\nHost: caf\xc3\xa9.test\r\n\r\n" + NEXT,
    f"{SEM} §7.2, RFC 3986 §3.2.2", "invalid", "host")
add("host-nul",
    b"GET /h HTTP/1.1\r\nHost: a\x00.test\r\n\r\n" + NEXT,
    f"{RFC} §5.5", "invalid", "host")
add("host-tab-inside",
    b"GET /h HTTP/1.1\r\nHost: a\tb\r\n\r\n" + NEXT,
    f"{SEM} §7.2", "invalid", "host")
add("host-unclosed-ip-literal",
    b"GET /h HTTP/1.1\r\nHost: [::1\r\n\r\n" + NEXT,
    "RFC 3986 §3.2.2", "invalid", "host")
add("host-space-before-colon",
    b"GET /h HTTP/1.1\r\nHost : a.test\r\n\r\n" + NEXT,
    f"{RFC} §5.1", "invalid", "host")
add("host-obs-fold",
    b"GET /h HTTP/1.1\r\nHost: a.test\r\n b.test\r\n\r\n" + NEXT,
    f"{RFC} §5.2 (unfolded, the value is no host either)", "invalid", "host")
add("host-twice-in-http10",
    b"GET /h HTTP/1.0\r\nHost: a.test\r\nHost: b.test\r\n\r\n",
    f"{SEM} §7.2", "invalid", "host")
add("host-comma-in-reg-name",
    b"GET /h HTTP/1.1\r\nHost: a.test,b.test\r\n\r\n" + NEXT,
    "RFC 3986 §3.2.2 (',' is a sub-delim: one odd reg-name, not a list)", "legal", "host")
add("host-empty-port",
    b"GET /h HTTP/1.1\r\nHost: a.test:\r\n\r\n" + NEXT,
    "RFC 3986 §3.2.3 (port = *DIGIT)", "legal", "host")

# ---------------------------------------------------------------------------
# field: names, values, folding, whitespace, CR, LF, NUL

add("field-space-in-name",
    b"GET /f HTTP/1.1\r\n" + H + b"X Foo: bar\r\n\r\n" + NEXT,
    f"{RFC} §5.1 (field-name = token)", "invalid", "field")
add("field-whitespace-before-first-field",
    b"GET /f HTTP/1.1\r\n X-A: b\r\n" + H + b"\r\n" + NEXT,
    f"{RFC} §2.2 (reject, or ignore such lines); {GARDEN}", "invalid", "field")
add("field-obs-fold-space",
    b"GET /f HTTP/1.1\r\n" + H + b"X-Fold: one\r\n two\r\n\r\n" + NEXT,
    f"{RFC} §5.2 (400, or each fold replaced by SP)", "invalid", "field")
add("field-obs-fold-tab",
    b"GET /f HTTP/1.1\r\n" + H + b"X-Fold: one\r\n\ttwo\r\n\r\n" + NEXT,
    f"{RFC} §5.2", "invalid", "field")
add("field-obs-fold-whitespace-only",
    b"GET /f HTTP/1.1\r\n" + H + b"X-Fold: one\r\n \t \r\nX-After: z\r\n\r\n" + NEXT,
    f"{RFC} §5.2", "invalid", "field")
add("field-without-colon",
    b"GET /f HTTP/1.1\r\n" + H + b"NoColonHere\r\n\r\n" + NEXT,
    f"{RFC} §5", "invalid", "field")
add("field-empty-name",
    b"GET /f HTTP/1.1\r\n" + H + b": value\r\n\r\n" + NEXT,
    f"{RFC} §5.1", "invalid", "field")
add("field-name-non-ascii",
    b"GET /f HTTP/1.1\r\n" + H + b"X-\xe9: a\r\n\r\n" + NEXT,
    f"{SEM} §5.1 token", "invalid", "field")
add("field-name-separator-char",
    b"GET /f HTTP/1.1\r\n" + H + b"X(A): a\r\n\r\n" + NEXT,
    f"{SEM} §5.6.2 tchar", "invalid", "field")
add("field-name-vertical-tab",
    b"GET /f HTTP/1.1\r\n" + H + b"X-A\x0b: a\r\n\r\n" + NEXT,
    f"{SEM} §5.6.2", "invalid", "field")
add("field-value-nul",
    b"GET /f HTTP/1.1\r\n" + H + b"X-A: a\x00b\r\n\r\n" + NEXT,
    f"{SEM} §5.5 (NUL: reject or replace with SP); {REGILERO}", "invalid", "field")
add("field-value-bare-cr",
    b"GET /f HTTP/1.1\r\n" + H + b"X-A: a\rb\r\n\r\n" + NEXT,
    f"{RFC} §2.2 bare CR", "invalid", "field")
add("field-value-bare-cr-before-crlf",
    b"GET /f HTTP/1.1\r\n" + H + b"X-A: a\r\r\n\r\n" + NEXT,
    f"{RFC} §2.2", "invalid", "field")
add("field-value-bare-lf",
    b"GET /f HTTP/1.1\r\n" + H + b"X-A: a\nX-B: c\r\n\r\n" + NEXT,
    f"{RFC} §2.2", "invalid", "field")
add("field-value-del",
    b"GET /f HTTP/1.1\r\n" + H + b"X-A: a\x7fb\r\n\r\n" + NEXT,
    f"{SEM} §5.5", "invalid", "field")
add("field-value-control-char",
    b"GET /f HTTP/1.1\r\n" + H + b"X-A: a\x01b\r\n\r\n" + NEXT,
    f"{SEM} §5.5", "invalid", "field")
add("field-block-ends-in-bare-lf",
    b"GET /f HTTP/1.1\r\n" + H + b"\n" + NEXT,
    f"{RFC} §2.2", "invalid", "field")
add("field-block-ends-in-bare-cr",
    b"GET /f HTTP/1.1\r\n" + H + b"\rX\r\n\r\n" + NEXT,
    f"{RFC} §2.2", "invalid", "field")
add("field-connection-not-a-token",
    b"GET /f HTTP/1.1\r\n" + H + b"Connection: keep alive\r\n\r\n" + NEXT,
    f"{SEM} §7.6.1 (connection-option = token)", "invalid", "field")
add("field-section-over-castellan-limit",
    b"GET /f HTTP/1.1\r\n" + H + b"X-Big: " + b"b" * 9000 + b"\r\n\r\n" + NEXT,
    f"{SEM} §15.5.20 (431); legal HTTP beyond castellan's http.max_header_bytes", "legal", "field")

# ---------------------------------------------------------------------------
# stream: empty lines, pauses, unfinished requests

add("stream-crlf-after-body",
    post(b"/s", H + b"Content-Length: 5\r\n", b"hello") + b"\r\n" + NEXT,
    f"{RFC} §2.2 (SHOULD ignore an empty line before a request-line)", "invalid", "stream")
add("stream-crlf-before-first-request",
    b"\r\n" + NEXT,
    f"{RFC} §2.2", "invalid", "stream")
add("stream-nul-between-requests",
    b"GET /s HTTP/1.1\r\n" + H + b"\r\n\x00\x00" + NEXT,
    f"{RFC} §2.2, §3; {REGILERO} (NUL)", "invalid", "stream")
add("stream-pause-between-head-and-body",
    [post(b"/s", H + b"Content-Length: 5\r\n"), b"hello" + NEXT],
    f"{KETTLE22} (pause-based desync: a server that times out mid-body reads the rest as a request)", "valid", "stream")
add("stream-pause-inside-chunk-size",
    [post(b"/s", TE, b"1"), b"0\r\n0123456789abcdef\r\n0\r\n\r\n" + NEXT],
    f"{RFC} §7.1 (a chunk-size line split over two reads)", "valid", "stream")
add("stream-pause-between-cr-and-lf",
    [b"GET /s HTTP/1.1\r\n" + H + b"\r", b"\n" + NEXT],
    f"{RFC} §2.2 (CRLF split over two reads)", "valid", "stream")
add("stream-pause-before-last-chunk",
    [post(b"/s", TE, b"5\r\nhello\r\n"), b"0\r\n\r\n" + NEXT],
    f"{KETTLE22} (pause-based)", "valid", "stream")
add("stream-pause-before-next-request",
    [post(b"/s", H + b"Content-Length: 5\r\n", b"hello"), NEXT],
    f"{RFC} §9.3", "valid", "stream")
add("stream-upgrade-h2c-answered-200",
    b"GET /s HTTP/1.1\r\n" + H + b"Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n"
    b"HTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\n\r\n" + NEXT,
    f"{SEM} §7.8 (a server may ignore Upgrade and answer 200: the connection stays HTTP/1.1); "
    "Miller 2020, h2c smuggling", "valid", "stream")
add("stream-head-never-ends",
    b"GET /s HTTP/1.1\r\n" + H + b"X-A: b\r\n",
    f"{RFC} §8 (incomplete head)", "incomplete", "stream")
add("stream-complete-then-head-never-ends",
    b"GET /s HTTP/1.1\r\n" + H + b"\r\nGET /s2 HTTP/1.1\r\n" + H,
    f"{RFC} §8, §9.3", "incomplete", "stream")
