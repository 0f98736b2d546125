-- wrk's report for bench/run.sh's http case: one line of key=value figures
-- that the script reads back, instead of wrk's text meant for people.
--
--   wrk requests=N bytes=B duration_us=D errors=E connect_errors=.. read_errors=..
--       write_errors=.. status_errors=.. timeouts=.. p50_us=.. p99_us=.. max_us=..
--
-- requests: complete responses; bytes: every byte read, heads included (a
-- response cut off by the end of the run counts its bytes, not itself);
-- status_errors: responses with a status of 400 or more; the percentiles are
-- wrk's own latency histogram, in microseconds, from the request's first byte
-- written to the response's last byte read (a new connection's connect and TLS
-- handshake are not in it). wrk is a closed loop: each connection sends its
-- next request when the answer to the last one is in.

done = function(summary, latency, requests)
    local errors = summary.errors
    local total = errors.connect + errors.read + errors.write + errors.status + errors.timeout
    io.write(string.format(
        "wrk requests=%d bytes=%d duration_us=%d errors=%d connect_errors=%d read_errors=%d " ..
        "write_errors=%d status_errors=%d timeouts=%d p50_us=%d p99_us=%d max_us=%d\n",
        summary.requests, summary.bytes, summary.duration, total, errors.connect, errors.read,
        errors.write, errors.status, errors.timeout,
        latency:percentile(50.0), latency:percentile(99.0), latency.max))
end
