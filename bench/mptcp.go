package bench

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strings"

	"github.com/braid-proxy/braid/internal/netlab"
)

// SetupMPTCP prepares kernel MPTCP for a download whose first subflow uses
// link primary: subflow/add_addr limits of 8 in both namespaces and, in the
// client namespace, one "subflow" endpoint per other link (bound to its
// device), replacing any endpoints from an earlier call. The routing that
// sends each subflow over its own link is netlab's source-address rules.
func SetupMPTCP(ctx context.Context, lab *netlab.Lab, primary int) error {
	cmds := [][]string{
		{"-n", lab.NSName(netlab.Client), "mptcp", "limits", "set", "subflow", "8", "add_addr_accepted", "8"},
		{"-n", lab.NSName(netlab.Exit), "mptcp", "limits", "set", "subflow", "8", "add_addr_accepted", "8"},
		{"-n", lab.NSName(netlab.Client), "mptcp", "endpoint", "flush"},
	}
	for _, k := range lab.Links() {
		if k.Index == primary {
			continue
		}
		cmds = append(cmds, []string{"-n", lab.NSName(netlab.Client), "mptcp", "endpoint", "add",
			k.ClientIP.String(), "dev", k.ClientDev, "subflow"})
	}
	for _, c := range cmds {
		if out, err := exec.CommandContext(ctx, "ip", c...).CombinedOutput(); err != nil {
			return fmt.Errorf("bench: ip %s: %s: %w", strings.Join(c, " "), bytes.TrimSpace(out), err)
		}
	}
	return nil
}
