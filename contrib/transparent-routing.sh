#!/bin/sh
# The policy routing that castellan's transparent mode ("transparent": true)
# needs, on the castellan host (on both nodes of a keepalived pair).
#
# In transparent mode castellan connects to a CAS server from the client's own
# address. The CAS server answers that address through its default gateway,
# castellan (contrib/gateway.nft). Those replies are addressed to a host that is
# not castellan, so the kernel would forward them to the client, which knows
# nothing of the connection and resets it. Instead:
# - nftables marks every TCP packet that belongs to a socket with
#   IP_TRANSPARENT set (castellan's connections to the CAS servers: nothing else
#   on the host sets it) with MARK;
# - a routing rule sends marked packets to routing table TABLE, whose only route
#   says that every address is local: the packet is delivered to castellan's
#   socket instead of being forwarded.
#
#   transparent-routing.sh up        add the table, rules and routes (again: replaced, not doubled)
#   transparent-routing.sh down      remove them
#   transparent-routing.sh status    show them
#
# Environment: CASTELLAN_TRANSPARENT_MARK (default 1) and
# CASTELLAN_TRANSPARENT_TABLE (default 100), when the host uses those already.
# Run as root, before castellan starts (e.g. from the unit:
# ExecStartPre=+/usr/local/sbin/castellan-transparent-routing up), or from the
# interface's configuration. Needs nftables and iproute2.
set -eu

mark=${CASTELLAN_TRANSPARENT_MARK:-1}
table=${CASTELLAN_TRANSPARENT_TABLE:-100}

# The address families this host has: IPv6 may be disabled.
families() {
    echo 4
    if [ -e /proc/sys/net/ipv6 ]; then echo 6; fi
}

remove_rules() {
    for family in $(families); do
        # One rule per run of `up`: delete every copy.
        while ip -"$family" rule del fwmark "$mark" lookup "$table" 2>/dev/null; do :; done
        ip -"$family" route flush table "$table" 2>/dev/null || true
    done
}

case "${1:-}" in
up)
    nft -f - <<NFT
table inet castellan_transparent
delete table inet castellan_transparent
table inet castellan_transparent {
    chain prerouting {
        type filter hook prerouting priority mangle; policy accept;
        meta l4proto tcp socket transparent 1 meta mark set $mark accept
    }
}
NFT
    remove_rules
    for family in $(families); do
        ip -"$family" rule add fwmark "$mark" lookup "$table"
        ip -"$family" route replace local default dev lo table "$table"
    done
    ;;
down)
    nft delete table inet castellan_transparent 2>/dev/null || true
    remove_rules
    ;;
status)
    nft list table inet castellan_transparent
    for family in $(families); do
        ip -"$family" rule show fwmark "$mark"
        ip -"$family" route show table "$table"
    done
    ;;
*)
    echo "usage: $0 up|down|status" >&2
    exit 2
    ;;
esac
