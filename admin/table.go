package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
)

// maxStatusBytes bounds what DecodeStatus reads: an exit with its
// maximum of sessions, each with a few links, stays well below.
const maxStatusBytes = 16 << 20

// StatusURL turns what a user gives --admin (host:port, or an http(s)
// URL) into the /status.json URL.
func StatusURL(addr string) (string, error) {
	addr = strings.TrimSpace(addr)
	if len(addr) > 2048 {
		return "", fmt.Errorf("%w: address too long", ErrStatus)
	}
	if !strings.Contains(addr, "://") {
		if _, _, err := net.SplitHostPort(addr); err != nil {
			return "", fmt.Errorf("%w: %q is neither HOST:PORT nor a URL", ErrStatus, addr)
		}
		addr = "http://" + addr
	}
	u, err := url.Parse(addr)
	if err != nil {
		return "", fmt.Errorf("%w: %q: %w", ErrStatus, addr, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("%w: %q: want http://HOST:PORT", ErrStatus, addr)
	}
	u.Path = strings.TrimSuffix(u.Path, "/") + "/status.json"
	u.RawQuery, u.Fragment, u.RawPath = "", "", ""
	return u.String(), nil
}

// DecodeStatus reads a /status.json body, refusing one larger than any
// real status.
func DecodeStatus(r io.Reader) (Status, error) {
	var st Status
	data, err := io.ReadAll(io.LimitReader(r, maxStatusBytes+1))
	if err != nil {
		return st, fmt.Errorf("%w: read: %w", ErrStatus, err)
	}
	if len(data) > maxStatusBytes {
		return st, fmt.Errorf("%w: more than %d bytes", ErrStatus, maxStatusBytes)
	}
	if err := json.Unmarshal(data, &st); err != nil {
		return st, fmt.Errorf("%w: decode: %w", ErrStatus, err)
	}
	if st.Role != RoleClient && st.Role != RoleExit {
		return st, fmt.Errorf("%w: role %q: not a braid admin listener?", ErrStatus, st.Role)
	}
	return st, nil
}

// FetchStatus GETs /status.json from a braid admin listener at addr
// (see StatusURL) and returns it decoded and as the raw body, for
// scripts that want every field as served.
func FetchStatus(ctx context.Context, hc *http.Client, addr string) (Status, []byte, error) {
	u, err := StatusURL(addr)
	if err != nil {
		return Status{}, nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return Status{}, nil, fmt.Errorf("%w: %w", ErrStatus, err)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return Status{}, nil, fmt.Errorf("%w: %w (is braid running with --admin %s?)", ErrStatus, err, addr)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return Status{}, nil, fmt.Errorf("%w: %s: HTTP %s", ErrStatus, u, resp.Status)
	}
	var buf bytes.Buffer
	st, err := DecodeStatus(io.TeeReader(resp.Body, &buf))
	if err != nil {
		return Status{}, nil, err
	}
	return st, buf.Bytes(), nil
}

// WriteTable prints st the way `wg show` prints peers: a summary line,
// then one row per link. Numbers are this node's view: TX is what it
// sent over the link, RX what it received.
func WriteTable(w io.Writer, st Status) error {
	counts := map[string]int{}
	for _, l := range st.Links {
		counts[l.State]++
	}
	var states []string
	for _, s := range []string{"up", "stalled", "down"} {
		if counts[s] > 0 {
			states = append(states, fmt.Sprintf("%d %s", counts[s], s))
		}
	}
	if len(states) == 0 {
		states = []string{"none"}
	}
	fmt.Fprintf(w, "braid %s: %s, links %s; tx %s rx %s Mbit/s",
		st.Role, plural(len(st.Sessions), "session"), strings.Join(states, ", "), fmtMbps(st.TxMbps), fmtMbps(st.RxMbps))
	if s := st.Socks; s != nil {
		fmt.Fprintf(w, "; socks %d active, %d total", s.Active, s.Total)
		if fails := failedReplies(s.Replies); fails != "" {
			fmt.Fprintf(w, " (failed: %s)", fails)
		}
	}
	fmt.Fprintln(w)
	if len(st.Links) == 0 {
		_, err := fmt.Fprintln(w, "no links")
		return err
	}
	fmt.Fprintln(w)
	exit := st.Role == RoleExit
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	hdr := "LINK\tPATH\tSTATE\tRTT\tTX Mbit/s\tRX Mbit/s\tSHARE\tRESENT\tSTALLS\tREDIALS"
	if exit {
		hdr = "LINK\tSESSION\tSTATE\tRTT\tTX Mbit/s\tRX Mbit/s\tSHARE\tRESENT\tSTALLS"
	}
	fmt.Fprintln(tw, hdr)
	for _, l := range st.Links {
		state := l.State
		if l.Backup {
			state += " (backup)"
		}
		second := dash(l.Addr)
		if exit {
			second = dash(l.Session)
		}
		rtt := "-"
		if l.State != "down" {
			rtt = fmtRTT(l.RTTms)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d",
			l.Name, second, state, rtt, fmtMbps(l.TxMbps), fmtMbps(l.RxMbps),
			fmtShare(l.Share), fmtBytes(l.ResentBytes), l.Stalls)
		if !exit {
			fmt.Fprintf(tw, "\t%d", l.Redials)
		}
		fmt.Fprintln(tw)
	}
	return tw.Flush()
}

// failedReplies lists non-zero failure reply counts as "code=n".
func failedReplies(replies map[string]uint64) string {
	var codes []string
	for c, n := range replies {
		if c != "0" && n > 0 {
			codes = append(codes, c)
		}
	}
	slices.Sort(codes)
	var parts []string
	for _, c := range codes {
		parts = append(parts, fmt.Sprintf("%s=%d", replyName(c), replies[c]))
	}
	return strings.Join(parts, " ")
}

// replyName names a SOCKS5 reply code for people.
func replyName(code string) string {
	names := map[string]string{
		"1": "general", "2": "not-allowed", "3": "net-unreachable", "4": "host-unreachable",
		"5": "refused", "6": "timeout", "7": "bad-command", "8": "bad-address",
	}
	if n, ok := names[code]; ok {
		return n
	}
	return code
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func fmtMbps(v float64) string {
	switch {
	case v == 0:
		return "0"
	case v < 10:
		return strconv.FormatFloat(v, 'f', 2, 64)
	case v < 100:
		return strconv.FormatFloat(v, 'f', 1, 64)
	}
	return strconv.FormatFloat(v, 'f', 0, 64)
}

func fmtShare(v float64) string {
	return strconv.FormatFloat(v*100, 'f', 0, 64) + "%"
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return strconv.Itoa(n) + " " + what + "s"
}

func fmtRTT(ms float64) string {
	if ms >= 1000 {
		return strconv.FormatFloat(ms/1000, 'f', 1, 64) + "s"
	}
	if ms < 10 {
		return strconv.FormatFloat(ms, 'f', 1, 64) + "ms"
	}
	return strconv.FormatFloat(ms, 'f', 0, 64) + "ms"
}

func fmtBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return strconv.FormatInt(n, 10) + " B"
	}
	v, i := float64(n), -1
	for v >= unit && i < 4 {
		v /= unit
		i++
	}
	return strconv.FormatFloat(v, 'f', 1, 64) + " " + string("KMGTP"[i]) + "iB"
}
