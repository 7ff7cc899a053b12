// Package admin is braid's operator window: an opt-in HTTP listener
// (--admin 127.0.0.1:9090) that serves Prometheus metrics, a JSON status
// for `braid status` and scripts, and a small embedded dashboard.
//
// braid runs unattended for months on routers and servers; the question an
// operator asks is "is every uplink pulling its weight?". The data path
// already keeps every counter in atomics (bond.Session.Stats,
// socks.Server.Stats); this package only reads them, at scrape or sample
// time, through a Source, so the data path never knows it is observed and
// a slow scraper cannot slow a link.
//
// Three views share one Snapshot:
//
//   - /metrics: a prometheus.Collector that turns the Snapshot into
//     braid_* metrics at scrape time (plus the Go and process
//     collectors). Labels are link names and session ids only, both
//     bounded sets; destinations never appear.
//   - /status.json: per-link state, RTT, throughput and share. Counters
//     only grow, so rates need two readings: a sampler goroutine owned by
//     the Handler reads the Source every Config.Interval and keeps the
//     latest rates and a short history for the dashboard.
//   - /: the dashboard, plain HTML, CSS and JavaScript embedded in the
//     binary (nothing from a CDN), polling /status.json.
//
// The listener has no authentication, so Listen refuses an address that
// is not loopback unless the caller explicitly allows it (--admin-allow-public):
// the metrics name the exit's clients by address and the dashboard shows
// traffic volumes, which are nobody else's business.
package admin
