package admin

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/braid-proxy/braid/bond"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

func TestTableClient(t *testing.T) {
	prev := map[string]counters{
		"00112233aabbccdd\x00eth0":  {sent: 0, recv: 500_000},
		"00112233aabbccdd\x00wwan0": {sent: 4000, recv: 7000},
	}
	st, _ := buildStatus(clientSnapshot(), t0, prev, 2*time.Second)
	var buf bytes.Buffer
	if err := WriteTable(&buf, st); err != nil {
		t.Fatal(err)
	}
	golden(t, "table_client", buf.Bytes())
}

func TestTableExit(t *testing.T) {
	snap := Snapshot{Role: RoleExit, Sessions: []SessionSnapshot{
		{ID: "0a0b0c0d0e0f0102", Links: []bond.LinkStats{
			{Name: "198.51.100.7:40001", State: bond.LinkUp, SRTT: 31 * time.Millisecond, BytesSent: 30_000_000, BytesRecv: 1_000_000, BytesResent: 5 << 20},
			{Name: "203.0.113.9:51515", State: bond.LinkUp, Backup: true, SRTT: 140 * time.Millisecond, Stalls: 3},
		}},
		{ID: "ffeeddccbbaa9988", Links: []bond.LinkStats{
			{Name: "192.0.2.44:60000", State: bond.LinkStalled, SRTT: 2 * time.Second, BytesSent: 10_000_000, Stalls: 12},
		}},
	}}
	st, _ := buildStatus(snap, t0, map[string]counters{}, 10*time.Second)
	var buf bytes.Buffer
	if err := WriteTable(&buf, st); err != nil {
		t.Fatal(err)
	}
	golden(t, "table_exit", buf.Bytes())
}

func TestTableEmpty(t *testing.T) {
	st, _ := buildStatus(Snapshot{Role: RoleClient}, t0, nil, 0)
	var buf bytes.Buffer
	if err := WriteTable(&buf, st); err != nil {
		t.Fatal(err)
	}
	golden(t, "table_empty", buf.Bytes())
}
