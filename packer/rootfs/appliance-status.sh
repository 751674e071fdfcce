#!/bin/sh
# /usr/lib/softswitch-appliance/status: the appliance's state on the
# console once booted (appliance-status.service). An operator at the
# serial console (and the image test) sees whether the node came up
# whole: the system state, the firewall, any failed unit with its last
# log lines; and, while the admin's generated one-time password is
# unchanged, that password, written to the console device only, never to
# the journal; the same for the command line's first password and the
# SNMPv3 user first boot made.
while [ "$(systemctl is-system-running)" = starting ]; do sleep 1; done
echo "appliance: system $(systemctl is-system-running)"
echo "appliance: firewall $(systemctl is-active nftables)"
echo "appliance: host $(hostname), addresses $(ip -4 -brief addr show scope global | awk '{$2=""; print}' | tr -s ' ' | paste -sd ';' -)"
# The node's own host keys, made at first boot: the operator compares
# these with what the SSH client shows at the first connection.
for k in /etc/ssh/ssh_host_*_key.pub; do
    [ -f "$k" ] && echo "appliance: ssh host key $(ssh-keygen -lf "$k")"
done
systemctl --failed --no-legend --plain | while read -r unit rest; do
    echo "appliance: failed unit $unit $rest"
    journalctl -u "$unit" -n 5 --no-pager -o cat | sed "s|^|appliance: $unit: |"
done
F=/var/lib/softswitch-firstboot/admin-password
if [ -s "$F" ] && [ "$(getent shadow admin | cut -d: -f3)" = 0 ]; then
    echo "appliance: admin login \"admin\", one-time password $(cat "$F") (to be changed at the first login; shown here until then)" > /dev/console
else
    rm -f "$F"
fi
# The command line's first user and the generated SNMPv3 user (made by
# first boot): shown on the console only, until the admin deletes the
# files once noted (docs/install.md, "First boot").
C=/var/lib/softswitch-firstboot/cli-password
if [ -s "$C" ]; then
    echo "appliance: command line: ssh -p 2022 admin@<management address>, first password $(cat "$C") (shown until $C is deleted)" > /dev/console
fi
S=/var/lib/softswitch-firstboot/snmp-user
if [ -s "$S" ]; then
    read -r name auth priv < "$S"
    echo "appliance: SNMPv3 user \"$name\" (read-only, SHA-256 auth password $auth, AES priv password $priv; shown until $S is deleted)" > /dev/console
fi
echo "appliance: status done"
