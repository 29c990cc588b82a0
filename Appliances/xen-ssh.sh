# Sourced by Appliances/xen.topology.yaml's checks: `kiln deploy xen` and ssh onto the topology's Xen host VM
# (192.0.2.1, Appliances/xenhost.yaml) with the test key. The key is copied to a private file (ssh refuses a
# key others can read, and a checkout makes it 0644); the host key of a VM made for this run is not recorded.
KILN_XEN_TMP=${KILN_XEN_TMP:-$(mktemp -d /tmp/kiln-xen.XXXXXX)}
export KILN_XEN_TMP
install -m 0600 "$KILN_TOPOLOGY_DIR/test-keys/xen-deploy" "$KILN_XEN_TMP/key"
trap 'rm -rf "$KILN_XEN_TMP"' EXIT
KILN_XEN_SSH_OPTS="-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR"
kiln_xen() {
  sub=$1; shift
  "$KILN" deploy xen "$sub" "$@" --connect ssh://root@192.0.2.1 --identity "$KILN_XEN_TMP/key" --timeout 240 \
    --ssh-option StrictHostKeyChecking=no --ssh-option UserKnownHostsFile=/dev/null --ssh-option LogLevel=ERROR
}
xen_ssh() { ssh -i "$KILN_XEN_TMP/key" $KILN_XEN_SSH_OPTS -o BatchMode=yes root@192.0.2.1 "$@"; }
