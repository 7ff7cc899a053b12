package bench

import (
	"flag"
	"os"
	"testing"

	"go.uber.org/goleak"
)

var (
	suiteFlag = flag.Bool("suite", false, "run the full benchmark suite (TestSuite); also BRAID_BENCH=1")
	outFlag   = flag.String("out", "", "directory for BENCHMARKS.md and bench/*.png (default: <module>/docs)")
	secsFlag  = flag.Float64("secs", 8, "seconds per bulk transfer in the suite")
	proxyFlag = flag.String("proxy", "braid", "proxy under test in the suite: braid, or ref (in-process single-link SOCKS stand-in, harness check only)")
)

func suiteEnabled() bool { return *suiteFlag || os.Getenv("BRAID_BENCH") == "1" }

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
