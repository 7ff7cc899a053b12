package admin

import (
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Sentinel errors.
var (
	// ErrConfig wraps every Config.Validate failure.
	ErrConfig = errors.New("admin: bad config")
	// ErrPublicAddr is returned by Listen for an address that is not
	// loopback when public addresses were not allowed.
	ErrPublicAddr = errors.New("admin: address is not loopback")
	// ErrStatus wraps a /status.json that could not be fetched or read.
	ErrStatus = errors.New("admin: status")
)

// Config configures a Handler.
type Config struct {
	// Source is what the handler shows; required.
	Source Source
	// Logger receives the handler's few messages; nil discards them.
	Logger *slog.Logger
	// Interval is how often the sampler reads Source to compute rates for
	// /status.json and the dashboard (100 ms .. 1 min).
	Interval time.Duration
	// History is how many samples /history.json keeps, so a freshly
	// opened dashboard has a chart at once (1 .. 86400).
	History int
}

// DefaultConfig returns a 1 s sampler with 5 minutes of history; Source
// must still be set.
func DefaultConfig() Config {
	return Config{Interval: time.Second, History: 300}
}

// Validate checks the config.
func (c Config) Validate() error {
	switch {
	case c.Source == nil:
		return fmt.Errorf("%w: Source is nil", ErrConfig)
	case c.Interval < 100*time.Millisecond || c.Interval > time.Minute:
		return fmt.Errorf("%w: Interval %v outside 100ms..1m", ErrConfig, c.Interval)
	case c.History < 1 || c.History > 86400:
		return fmt.Errorf("%w: History %d outside 1..86400", ErrConfig, c.History)
	case time.Duration(c.History)*c.Interval > 24*time.Hour:
		return fmt.Errorf("%w: History %d × Interval %v is more than a day of samples", ErrConfig, c.History, c.Interval)
	}
	return nil
}

//go:embed web
var webFS embed.FS

// Handler serves /metrics, /status.json, /history.json and the dashboard
// at /. It owns a sampler goroutine: Close it when done.
type Handler struct {
	cfg  Config
	log  *slog.Logger
	mux  *http.ServeMux
	now  func() time.Time
	stop chan struct{}
	done chan struct{}
	once sync.Once

	mu     sync.Mutex
	prev   map[string]counters // guarded by mu: counters at the last sample
	prevAt time.Time           // guarded by mu
	cur    Status              // guarded by mu: the last sample
	hist   []HistoryPoint      // guarded by mu: oldest first, at most cfg.History
}

// NewHandler returns a Handler for src with DefaultConfig. It panics if
// src is nil, a programming error.
func NewHandler(src Source, log *slog.Logger) *Handler {
	cfg := DefaultConfig()
	cfg.Source = src
	cfg.Logger = log
	h, err := New(cfg)
	if err != nil {
		panic(err)
	}
	return h
}

// New returns a Handler for cfg and starts its sampler.
func New(cfg Config) (*Handler, error) {
	return newHandler(cfg, time.Now, true)
}

// newHandler lets tests drive the clock and the sampling themselves.
func newHandler(cfg Config, now func() time.Time, run bool) (*Handler, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	h := &Handler{cfg: cfg, log: log, now: now, stop: make(chan struct{}), done: make(chan struct{})}

	reg := prometheus.NewRegistry()
	reg.MustRegister(
		NewCollector(cfg.Source),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	web, err := fs.Sub(webFS, "web")
	if err != nil {
		return nil, fmt.Errorf("admin: embedded dashboard: %w", err)
	}
	h.mux = http.NewServeMux()
	h.mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		ErrorLog:      slogPromLogger{log},
		ErrorHandling: promhttp.ContinueOnError,
	}))
	h.mux.HandleFunc("GET /status.json", h.serveStatus)
	h.mux.HandleFunc("GET /history.json", h.serveHistory)
	h.mux.Handle("GET /", http.FileServerFS(web))

	h.sample() // so /status.json has something at once
	if run {
		go h.run()
	} else {
		close(h.done)
	}
	return h, nil
}

// ServeHTTP serves the admin endpoints with headers that keep the
// dashboard to its own origin.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hd := w.Header()
	hd.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Referrer-Policy", "no-referrer")
	hd.Set("Cache-Control", "no-store")
	h.mux.ServeHTTP(w, r)
}

// Close stops the sampler and waits for it. It is idempotent. The
// handler still answers afterwards, with the last sample.
func (h *Handler) Close() error {
	h.once.Do(func() { close(h.stop) })
	<-h.done
	return nil
}

func (h *Handler) run() {
	defer close(h.done)
	t := time.NewTicker(h.cfg.Interval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			h.sample()
		case <-h.stop:
			return
		}
	}
}

// sample reads the source and updates the status and history.
func (h *Handler) sample() {
	snap := h.cfg.Source.Snapshot()
	now := h.now()
	h.mu.Lock()
	defer h.mu.Unlock()
	st, next := buildStatus(snap, now, h.prev, now.Sub(h.prevAt))
	h.prev, h.prevAt, h.cur = next, now, st
	if len(h.hist) == h.cfg.History {
		copy(h.hist, h.hist[1:])
		h.hist = h.hist[:len(h.hist)-1]
	}
	h.hist = append(h.hist, historyPoint(st))
}

// Status returns the last sample.
func (h *Handler) Status() Status {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.cur
}

func (h *Handler) serveStatus(w http.ResponseWriter, r *http.Request) {
	h.writeJSON(w, h.Status())
}

func (h *Handler) serveHistory(w http.ResponseWriter, r *http.Request) {
	h.mu.Lock()
	hist := History{IntervalSeconds: h.cfg.Interval.Seconds(), Samples: append([]HistoryPoint(nil), h.hist...)}
	h.mu.Unlock()
	h.writeJSON(w, hist)
}

func (h *Handler) writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		h.log.Debug("admin: write response", "err", err)
	}
}

// slogPromLogger passes promhttp's scrape errors to slog.
type slogPromLogger struct{ log *slog.Logger }

func (l slogPromLogger) Println(v ...any) { l.log.Warn("admin: metrics", "err", fmt.Sprint(v...)) }
