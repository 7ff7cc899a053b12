//go:build !unix

package bondtest

import "time"

// cpuTime is unknown here; the benchmark then skips its cpu% metric.
func cpuTime() time.Duration { return 0 }
