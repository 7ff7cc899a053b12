package bondtest

import (
	"math"
	"math/bits"
	"time"
)

// txDur is how long n bytes take to serialise at rate bytes/s, rounded up
// so a link never beats its rate; 0 when the rate is unlimited.
func txDur(n, rate int64) time.Duration {
	if rate <= 0 || n <= 0 {
		return 0
	}
	return time.Duration(mulDiv(uint64(n), uint64(time.Second), uint64(rate), true))
}

// bytesIn is how many bytes rate bytes/s serialises in d, rounded down.
func bytesIn(d time.Duration, rate int64) int64 {
	if rate <= 0 || d <= 0 {
		return 0
	}
	return int64(mulDiv(uint64(d), uint64(rate), uint64(time.Second), false))
}

// mulDiv returns a*b/c without intermediate overflow, saturating at
// MaxInt64 so callers can convert to signed types.
func mulDiv(a, b, c uint64, roundUp bool) uint64 {
	hi, lo := bits.Mul64(a, b)
	if hi >= c {
		return math.MaxInt64
	}
	q, r := bits.Div64(hi, lo, c)
	if roundUp && r != 0 {
		q++
	}
	return min(q, math.MaxInt64)
}
