package admin

import (
	"context"
	"crypto/sha256"
	"io"
	"log/slog"
	"maps"
	"math/rand/v2"
	"net"
	"testing"
	"time"

	"github.com/braid-proxy/braid/bond"
	"github.com/braid-proxy/braid/socks"
)

// TestAdaptersRealSession runs a real bond session over an in-memory
// link, moves data through it, and reads both ends through ClientSource
// and ExitSource.
func TestAdaptersRealSession(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cfg := bond.DefaultConfig()
	cfg.Logger = slog.New(slog.DiscardHandler)
	srv, err := bond.NewServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	cs, err := bond.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()

	a, b := net.Pipe()
	joined := make(chan error, 1)
	go func() {
		_, err := srv.AddLink(ctx, b, bond.LinkOptions{Name: "198.51.100.7:40001"})
		joined <- err
	}()
	if _, err := cs.AddLink(ctx, a, bond.LinkOptions{Name: "wan0"}); err != nil {
		t.Fatal(err)
	}
	if err := <-joined; err != nil {
		t.Fatal(err)
	}
	ss, err := srv.Accept()
	if err != nil {
		t.Fatal(err)
	}

	payload := make([]byte, 256<<10)
	rand.NewChaCha8([32]byte{7}).Read(payload)
	wrote := make(chan error, 1)
	go func() {
		_, err := cs.Write(payload)
		wrote <- err
	}()
	got := make([]byte, len(payload))
	if _, err := io.ReadFull(ss, got); err != nil {
		t.Fatal(err)
	}
	if err := <-wrote; err != nil {
		t.Fatal(err)
	}
	if sha256.Sum256(got) != sha256.Sum256(payload) {
		t.Fatal("payload corrupted in transit")
	}

	ssrv, err := socks.NewServer(socks.DefaultConfig(), func(context.Context, string) (net.Conn, error) { return nil, io.EOF })
	if err != nil {
		t.Fatal(err)
	}
	defer ssrv.Close()
	var links Links
	links.Register("wan0", "dev=eth0 → exit:7000")
	links.Register("lte", "dev=wwan0 → exit:7000")
	links.Redialed("lte")
	links.Redialed("lte")
	client := WithAddrs(ClientSource(func() *bond.Session { return cs }, ssrv, links.Redials), links.Addrs).Snapshot()
	exit := ExitSource(srv).Snapshot()

	if client.Role != RoleClient || len(client.Sessions) != 1 || client.Socks == nil || client.Socks.Active != 0 {
		t.Fatalf("client snapshot %+v", client)
	}
	if exit.Role != RoleExit || len(exit.Sessions) != 1 || exit.Socks != nil {
		t.Fatalf("exit snapshot %+v", exit)
	}
	if client.Sessions[0].ID != exit.Sessions[0].ID || len(client.Sessions[0].ID) != 16 {
		t.Errorf("session ids %q and %q, want the same 16 hex digits", client.Sessions[0].ID, exit.Sessions[0].ID)
	}
	cl, el := client.Sessions[0].Links, exit.Sessions[0].Links
	if len(cl) != 1 || cl[0].Name != "wan0" || cl[0].State != bond.LinkUp || cl[0].BytesSent < int64(len(payload)) {
		t.Errorf("client links %+v, want wan0 up with ≥ %d bytes sent", cl, len(payload))
	}
	if len(el) != 1 || el[0].Name != "198.51.100.7:40001" || el[0].BytesRecv < int64(len(payload)) {
		t.Errorf("exit links %+v, want ≥ %d bytes received", el, len(payload))
	}
	if !maps.Equal(client.Redials, map[string]uint64{"wan0": 0, "lte": 2}) || client.Addrs["lte"] != "dev=wwan0 → exit:7000" {
		t.Errorf("redials %v addrs %v", client.Redials, client.Addrs)
	}
	// lte is configured but has no link: it shows as down.
	rs := rows(client)
	if len(rs) != 2 || rs[1].Stats.Name != "lte" || rs[1].Stats.State != bond.LinkDown || rs[1].Redials != 2 {
		t.Errorf("rows %+v", rs)
	}

	// Between sessions the client has none; a nil socks server is fine.
	if snap := ClientSource(func() *bond.Session { return nil }, nil, nil).Snapshot(); len(snap.Sessions) != 0 || snap.Socks != nil {
		t.Errorf("idle client snapshot %+v", snap)
	}
}

func TestLinksZeroValue(t *testing.T) {
	var l Links
	l.Redialed("x") // before Register: still counted
	l.Register("x", "a")
	l.Register("x", "b") // re-registering keeps the count
	if r, a := l.Redials(), l.Addrs(); r["x"] != 1 || a["x"] != "b" {
		t.Errorf("redials %v addrs %v", r, a)
	}
	r := l.Redials()
	r["x"] = 100 // a copy
	if l.Redials()["x"] != 1 {
		t.Error("Redials returned the internal map")
	}
}
