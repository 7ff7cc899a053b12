package netlab

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// maxCapture bounds the output a Proc keeps per stream; later output is
// counted but dropped.
const maxCapture = 4 << 20

// RunOptions tune Lab.RunWith.
type RunOptions struct {
	// Env is the process environment; nil means this process's environment
	// without proxy variables (so curl and friends only use what the test
	// tells them).
	Env []string
	// Dir is the working directory; "" means the current one.
	Dir string
	// Stdin feeds the process; nil means no input.
	Stdin io.Reader
}

// Proc is a process running inside a lab namespace.
type Proc struct {
	lab    *Lab
	cmd    *exec.Cmd
	argv   []string
	stdout capBuf
	stderr capBuf
	done   chan struct{}
	err    error // set before done is closed
}

// Run starts argv inside namespace role (via `ip netns exec`, which execs in
// place, so Pid is the program's own pid). Lab.Close kills it if still
// running.
func (l *Lab) Run(role string, argv ...string) (*Proc, error) {
	return l.RunWith(role, RunOptions{}, argv...)
}

// RunWith is Run with options.
func (l *Lab) RunWith(role string, opt RunOptions, argv ...string) (*Proc, error) {
	if len(argv) == 0 {
		return nil, errors.New("netlab: run: empty command")
	}
	if _, err := l.nsHandle(role); err != nil {
		return nil, err
	}
	p := &Proc{lab: l, argv: argv, done: make(chan struct{})}
	p.cmd = exec.Command("ip", append([]string{"netns", "exec", l.names[role]}, argv...)...)
	p.cmd.Stdout = &p.stdout
	p.cmd.Stderr = &p.stderr
	p.cmd.Stdin = opt.Stdin
	p.cmd.Dir = opt.Dir
	p.cmd.Env = opt.Env
	if p.cmd.Env == nil {
		p.cmd.Env = cleanEnv(os.Environ())
	}
	// Own process group, so Kill reaches children; die with this process.
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	l.mu.Lock()
	if l.closed.Load() {
		l.mu.Unlock()
		return nil, ErrClosed
	}
	if err := spawn(p.cmd.Start); err != nil {
		l.mu.Unlock()
		return nil, fmt.Errorf("netlab: run %s in %s: %w", argv[0], role, err)
	}
	l.procs[p] = struct{}{}
	l.mu.Unlock()
	go func() {
		p.err = p.cmd.Wait()
		release()
		l.mu.Lock()
		delete(l.procs, p)
		l.mu.Unlock()
		close(p.done)
	}()
	return p, nil
}

// Pdeathsig fires when the *thread* that forked the child exits, and Go
// ends a thread whenever a goroutine exits while locked to it, which InNS
// does by design. So children are forked from one dedicated locked thread
// that lives exactly as long as at least one child does.
var spawner struct {
	mu   sync.Mutex
	live int
	ch   chan func()
}

// spawn runs start on the spawner thread; on success the caller owns one
// reference and must call release once the child has exited.
func spawn(start func() error) error {
	spawner.mu.Lock()
	if spawner.ch == nil {
		spawner.ch = make(chan func())
		go spawnLoop(spawner.ch)
	}
	spawner.live++
	ch := spawner.ch
	spawner.mu.Unlock()
	errc := make(chan error, 1)
	ch <- func() { errc <- start() }
	err := <-errc
	if err != nil {
		release()
	}
	return err
}

func release() {
	spawner.mu.Lock()
	defer spawner.mu.Unlock()
	spawner.live--
	if spawner.live == 0 {
		close(spawner.ch)
		spawner.ch = nil
	}
}

func spawnLoop(ch chan func()) {
	runtime.LockOSThread()
	// Exits locked: no child is left that depends on this thread.
	for f := range ch {
		f()
	}
}

func cleanEnv(env []string) []string {
	out := env[:0:0]
	for _, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		switch strings.ToLower(k) {
		case "http_proxy", "https_proxy", "all_proxy", "no_proxy", "ftp_proxy":
			continue
		}
		out = append(out, kv)
	}
	return out
}

// Pid returns the process id.
func (p *Proc) Pid() int { return p.cmd.Process.Pid }

// Done is closed when the process has exited.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Wait waits for exit and returns its error (nil for status 0), with the
// command and the tail of stderr when it failed.
func (p *Proc) Wait() error {
	<-p.done
	if p.err != nil {
		return fmt.Errorf("netlab: %s: %w: %s", strings.Join(p.argv, " "), p.err, tail(p.stderr.Bytes(), 2048))
	}
	return nil
}

// Signal sends sig to the process group.
func (p *Proc) Signal(sig syscall.Signal) error {
	select {
	case <-p.done:
		return nil
	default:
	}
	if err := unix.Kill(-p.cmd.Process.Pid, sig); err != nil && !errors.Is(err, unix.ESRCH) {
		return fmt.Errorf("netlab: signal %v: %w", sig, err)
	}
	return nil
}

// Kill SIGKILLs the process group and waits for the process to exit.
func (p *Proc) Kill() {
	_ = p.Signal(syscall.SIGKILL)
	<-p.done
}

// Stop sends SIGTERM, waits up to grace for a clean exit, then kills. It
// returns the exit error of a clean exit (nil if it exited with status 0).
func (p *Proc) Stop(grace time.Duration) error {
	_ = p.Signal(syscall.SIGTERM)
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-p.done:
		return p.Wait()
	case <-t.C:
		p.Kill()
		return fmt.Errorf("netlab: %s did not exit within %v of SIGTERM", p.argv[0], grace)
	}
}

// Stdout returns what the process wrote to stdout so far (up to 4 MiB).
func (p *Proc) Stdout() []byte { return p.stdout.Bytes() }

// Stderr returns what the process wrote to stderr so far (up to 4 MiB).
func (p *Proc) Stderr() []byte { return p.stderr.Bytes() }

// Usage is a process's resource use read from /proc.
type Usage struct {
	// CPU is user plus system time.
	CPU time.Duration
	// RSS is the resident set size in bytes.
	RSS int64
}

// Usage reads the process's CPU time and resident memory.
func (p *Proc) Usage() (Usage, error) {
	pid := strconv.Itoa(p.Pid())
	stat, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return Usage{}, fmt.Errorf("netlab: usage: %w", err)
	}
	cpu, err := parseStatCPU(stat)
	if err != nil {
		return Usage{}, err
	}
	status, err := os.ReadFile("/proc/" + pid + "/status")
	if err != nil {
		return Usage{}, fmt.Errorf("netlab: usage: %w", err)
	}
	rss, err := parseStatusRSS(status)
	if err != nil {
		return Usage{}, err
	}
	return Usage{CPU: cpu, RSS: rss}, nil
}

// clockTicks is USER_HZ, fixed at 100 on Linux for /proc/<pid>/stat.
const clockTicks = 100

// parseStatCPU returns utime+stime from /proc/<pid>/stat. The command name
// (field 2) may hold spaces and parentheses, so fields are counted from the
// last ')'.
func parseStatCPU(b []byte) (time.Duration, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, errors.New("netlab: /proc stat: no command field")
	}
	// After ')': state(3) ppid(4) ... utime(14) stime(15).
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("netlab: /proc stat: %d fields after command, want >= 13", len(f))
	}
	ut, err1 := strconv.ParseUint(f[11], 10, 63)
	st, err2 := strconv.ParseUint(f[12], 10, 63)
	if err := errors.Join(err1, err2); err != nil {
		return 0, fmt.Errorf("netlab: /proc stat: %w", err)
	}
	ticks := ut + st
	if ticks > uint64(1<<62)/uint64(time.Second) {
		return 0, errors.New("netlab: /proc stat: cpu time out of range")
	}
	return time.Duration(ticks) * time.Second / clockTicks, nil
}

// parseStatusRSS returns VmRSS from /proc/<pid>/status in bytes.
func parseStatusRSS(b []byte) (int64, error) {
	for _, line := range strings.Split(string(b), "\n") {
		v, ok := strings.CutPrefix(line, "VmRSS:")
		if !ok {
			continue
		}
		f := strings.Fields(v)
		if len(f) != 2 || f[1] != "kB" {
			return 0, fmt.Errorf("netlab: /proc status: bad VmRSS line %q", line)
		}
		kb, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil || kb < 0 || kb > 1<<40 {
			return 0, fmt.Errorf("netlab: /proc status: bad VmRSS %q", f[0])
		}
		return kb * 1024, nil
	}
	return 0, errors.New("netlab: /proc status: no VmRSS")
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

// capBuf is a goroutine-safe buffer that keeps the first maxCapture bytes.
type capBuf struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (c *capBuf) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if room := maxCapture - c.buf.Len(); room > 0 {
		c.buf.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

func (c *capBuf) Bytes() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return bytes.Clone(c.buf.Bytes())
}
