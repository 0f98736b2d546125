// systemd's readiness notifications (sd_notify(3)), spoken without libsystemd.
#pragma once

#include <sys/socket.h>
#include <sys/un.h>

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace castellan::proxy {

// Where a notification goes: the sockaddr_un and the length to pass to sendto(2)
// (for an abstract name the length is the name's, not sizeof(sockaddr_un): the
// bytes after the name would otherwise be part of it).
struct NotifyAddress {
    sockaddr_un address{};
    socklen_t length = 0;
};

// The address named by `value`, the content of $NOTIFY_SOCKET: an absolute path
// ("/run/systemd/notify"), or an abstract name when it starts with '@' (the '@'
// becomes the leading NUL of sun_path). Gives nullopt for an empty value, a
// relative path, a bare "@", a path with a NUL in it, or a name too long for
// sun_path (a path needs room for its terminating NUL there, an abstract name
// does not). Pure: any thread.
std::optional<NotifyAddress> notify_socket_address(std::string_view value) noexcept;

// systemd drops a notification longer than this (its receive buffer is PIPE_BUF
// bytes, and a truncated datagram is ignored), so notify_systemd() refuses one.
inline constexpr std::size_t notify_message_max = 4096;

// Sends `state` ("READY=1\nSTATUS=serving 3 virtual services", "RELOADING=1",
// "STOPPING=1": newline-separated assignments, sd_notify(3)) as one datagram to
// the AF_UNIX socket named by $NOTIFY_SOCKET. Gives true when the datagram was
// handed to the kernel whole; false when the variable is unset or empty (not run
// by systemd as Type=notify: nothing to do), when it names no usable address,
// when `state` is empty or longer than notify_message_max, or on any socket
// error. Never throws and never blocks: a fresh SOCK_NONBLOCK socket per call
// (it is called a handful of times in a process's life), so a systemd that does
// not read its socket costs a false, not a stuck control loop. The caller decides
// whether a false is worth a log line.
//
// Any thread may call it; it reads the environment, so nothing may setenv(3)
// concurrently (castellan never does after start).
//
// Why not libsystemd's sd_notify: the protocol is one datagram on a documented
// socket, and linking libsystemd would make the binary and its build depend on
// systemd's library (and its headers at build time) for these few lines. The
// sender is the process itself, so NotifyAccess=main in the unit accepts it from
// any of castellan's threads.
bool notify_systemd(std::string_view state) noexcept;

// "RELOADING=1\nMONOTONIC_USEC=<CLOCK_MONOTONIC now, in microseconds>", the
// message that starts a reload. systemd 253 and later (Type=notify-reload) pair a
// RELOADING=1 with the reload it asked for by that timestamp, and ignore one
// without it; older ones ignore the field. Any thread.
std::string reloading_state();

}  // namespace castellan::proxy
