// xmppgen: the compiled load generator of benchmarks/load (issue 24).
//
// Standard library only. One process (pinned to one core by its parent):
// logins (a storm at -concurrency), then a closed loop (-inflight stanzas
// in flight per client) or an open loop (-rates, offered stanzas/s), of a mix
// of stanza kinds (-mix). Prints one JSON object on stdout with the same keys
// as the Python generator (benchmarks/load/generator.py), plus its own CPU
// (getrusage) beside every figure and "generator_saturated" where it passed
// 80% of its core.
//
// Every stanza carries the marker ~T<20 digits: ns since start>S<7 digits:
// sender><kind> in a body, status or id; readers scan received bytes for "~T"
// (no XML parsing on the hot path). Kinds: b chat to a bare JID, f chat to a
// full JID, q chat with a receipt request and a chat state (XEP-0184, XEP-0085;
// the receiver answers with a receipt marked R, which ends it), p presence
// update (ends when all -contacts got it), i ping to the server (XEP-0199,
// marker in the id), r roster set (RFC 6121 §2.3, marker in the id; the push
// is not counted, the result ends it).
package main

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

var start = time.Now()

func nowNs() int64 { return int64(time.Since(start)) }

type options struct {
	login       loginConfig
	scenario    string // login | closed | open
	clients     int
	first       int
	concurrency int
	inflight    int
	duration    float64
	warmup      float64
	drain       float64
	settle      float64
	maxSettle   float64
	rates       []int
	mix         map[byte]float64
	bodySize    int
	contacts    int
	total       int    // accounts on the contacts ring (0: -clients)
	write       string // batch | single
	serverPid   int
	echo        bool // the target echoes stanzas back to their sender (echo_server)
}

func main() {
	var o options
	var mix, rates, cafile string
	var insecure bool
	var timeout float64
	flag.StringVar(&o.login.addr, "addr", "127.0.0.1:5222", "server host:port")
	flag.StringVar(&o.login.domain, "domain", "localhost", "XMPP domain")
	flag.StringVar(&o.login.password, "password", "password", "password of every account uN")
	flag.StringVar(&o.login.tlsMode, "tls", "starttls", "direct | starttls | none")
	flag.StringVar(&o.login.mech, "mechanism", "SCRAM-SHA-1", "PLAIN | SCRAM-SHA-1 | SCRAM-SHA-256")
	flag.StringVar(&o.login.resource, "resource", "load", "resource to bind")
	flag.BoolVar(&o.login.nodelay, "nodelay", true, "TCP_NODELAY (Nagle off)")
	flag.StringVar(&cafile, "cafile", "", "PEM file of the CA to trust")
	flag.BoolVar(&insecure, "insecure", false, "do not check the server's certificate")
	flag.Float64Var(&timeout, "login-timeout", 60, "seconds for one login")
	flag.StringVar(&o.scenario, "scenario", "closed", "login | closed | open")
	flag.IntVar(&o.clients, "clients", 100, "clients (accounts u<first>..)")
	flag.IntVar(&o.first, "first", 0, "index of the first account")
	flag.IntVar(&o.concurrency, "concurrency", 50, "logins at once")
	flag.IntVar(&o.inflight, "inflight", 4, "closed loop: stanzas in flight per client")
	flag.Float64Var(&o.duration, "duration", 10, "seconds of traffic (per rate in the open loop)")
	flag.Float64Var(&o.warmup, "warmup", 2, "seconds before the measured window")
	flag.Float64Var(&o.drain, "drain", 10, "seconds without a delivery before the stragglers still missing count as lost")
	flag.Float64Var(&o.settle, "settle", 0.5, "seconds of idle after the logins")
	flag.Float64Var(&o.maxSettle, "max-settle", 60, "seconds at most, after -settle, waiting for no reads for 0.3 s and the server under 10% of a core")
	flag.StringVar(&rates, "rates", "1000,2000,5000", "open loop: offered stanzas/s")
	flag.StringVar(&mix, "mix", "chat-bare=1", "weights: chat-bare, chat-full, receipt, presence, ping, roster")
	flag.IntVar(&o.bodySize, "body-size", 120, "bytes of a chat body")
	flag.IntVar(&o.contacts, "contacts", 0, "presence: contacts per roster (a ring, as generator.contacts_of)")
	flag.IntVar(&o.total, "accounts", 0, "accounts on the ring (default -clients)")
	flag.StringVar(&o.write, "write", "batch", "batch: one write per wake-up | single: one write per stanza")
	flag.IntVar(&o.serverPid, "server-pid", 0, "pid of the server (its CPU is measured, with children)")
	flag.BoolVar(&o.echo, "echo", false, "the target is echo_server: stanzas come back to their sender")
	flag.Parse()
	o.login.timeout = time.Duration(timeout * float64(time.Second))
	o.login.tlsConf = &tls.Config{ServerName: o.login.domain, InsecureSkipVerify: insecure,
		MinVersion: tls.VersionTLS12, ClientSessionCache: nil}
	if cafile != "" {
		pem, err := os.ReadFile(cafile)
		if err != nil {
			fatal(err)
		}
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(pem)
		o.login.tlsConf.RootCAs = pool
	}
	for _, part := range strings.Split(rates, ",") {
		if n, err := strconv.Atoi(strings.TrimSpace(part)); err == nil && n > 0 {
			o.rates = append(o.rates, n)
		}
	}
	o.mix = map[byte]float64{}
	for _, part := range strings.Split(mix, ",") {
		name, w, _ := strings.Cut(part, "=")
		k, ok := kindNames[strings.TrimSpace(name)]
		f, err := strconv.ParseFloat(w, 64)
		if !ok || err != nil || f < 0 {
			fatal(fmt.Errorf("bad -mix part %q", part))
		}
		o.mix[k] = f
	}
	if o.total == 0 {
		o.total = o.clients
	}
	var out map[string]any
	switch o.scenario {
	case "login":
		out = loginScenario(&o)
	case "closed":
		out = closedLoop(&o)
	case "open":
		out = openLoop(&o)
	default:
		fatal(fmt.Errorf("unknown -scenario %q", o.scenario))
	}
	out["generator"] = "go"
	enc := json.NewEncoder(os.Stdout)
	if err := enc.Encode(out); err != nil {
		fatal(err)
	}
}

func fatal(err error) {
	_ = json.NewEncoder(os.Stdout).Encode(map[string]any{"error": err.Error()})
	os.Exit(0)
}

var kindNames = map[string]byte{"chat-bare": 'b', "chat-full": 'f', "receipt": 'q', "presence": 'p',
	"ping": 'i', "roster": 'r'}

func kindName(k byte) string {
	for n, v := range kindNames {
		if v == k {
			return n
		}
	}
	if k == 'R' {
		return "receipt-back"
	}
	return string(k)
}

// --- measurements --------------------------------------------------------------

func selfCPU() float64 {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return float64(ru.Utime.Sec+ru.Stime.Sec) + float64(ru.Utime.Usec+ru.Stime.Usec)/1e6
}

func treePids(pid int) []int {
	out, todo := []int{}, []int{pid}
	for len(todo) > 0 {
		cur := todo[len(todo)-1]
		todo = todo[:len(todo)-1]
		out = append(out, cur)
		tasks, _ := os.ReadDir(fmt.Sprintf("/proc/%d/task", cur))
		for _, t := range tasks {
			b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/children", cur, t.Name()))
			if err != nil {
				continue
			}
			for _, f := range strings.Fields(string(b)) {
				if n, err := strconv.Atoi(f); err == nil {
					todo = append(todo, n)
				}
			}
		}
	}
	return out
}

func treeCPU(pid int) float64 {
	if pid <= 0 {
		return 0
	}
	ticks := 0
	for _, p := range treePids(pid) {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p))
		if err != nil {
			continue
		}
		s := string(b)
		fields := strings.Fields(s[strings.LastIndex(s, ")")+1:])
		if len(fields) > 12 {
			u, _ := strconv.Atoi(fields[11])
			st, _ := strconv.Atoi(fields[12])
			ticks += u + st
		}
	}
	return float64(ticks) / 100 // USER_HZ
}

func coreTimes() map[string][2]int64 {
	out := map[string][2]int64{}
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return out
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 9 || !strings.HasPrefix(f[0], "cpu") || f[0] == "cpu" {
			continue
		}
		var sum, idle int64
		for i := 1; i <= 8; i++ {
			v, _ := strconv.ParseInt(f[i], 10, 64)
			sum += v
			if i == 4 || i == 5 {
				idle += v
			}
		}
		out[f[0]] = [2]int64{sum - idle, sum}
	}
	return out
}

// cpuWindow: CPU shares (of one core) of the server tree and of this process,
// and how busy each core was, over a window (the keys of generator.CpuWindow).
type cpuWindow struct {
	pid         int
	t0          time.Time
	self0, srv0 float64
	cores0      map[string][2]int64
}

func openWindow(pid int) *cpuWindow {
	return &cpuWindow{pid: pid, t0: time.Now(), self0: selfCPU(), srv0: treeCPU(pid), cores0: coreTimes()}
}

func (w *cpuWindow) close(out map[string]any) {
	wall := time.Since(w.t0).Seconds()
	gen := (selfCPU() - w.self0) / wall
	out["generator_cpu"] = gen
	out["generator_saturated"] = gen > 0.8
	if w.pid > 0 {
		out["server_cpu"] = (treeCPU(w.pid) - w.srv0) / wall
	}
	for name, now := range coreTimes() {
		if then, ok := w.cores0[name]; ok && now[1] > then[1] {
			out[name+"_busy"] = float64(now[0]-then[0]) / float64(now[1]-then[1])
		}
	}
}

func pct(sorted []int64, q float64) float64 {
	if len(sorted) == 0 {
		return -1
	}
	i := int(q*float64(len(sorted)-1) + 0.5)
	return float64(sorted[i]) / 1e6
}

func latencyStats(lat []int64, out map[string]any) {
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	out["p50_ms"] = pct(lat, 0.50)
	out["p99_ms"] = pct(lat, 0.99)
	if len(lat) > 0 {
		out["max_ms"] = float64(lat[len(lat)-1]) / 1e6
	} else {
		out["max_ms"] = -1.0
	}
}

// --- logins --------------------------------------------------------------------

type loginResult struct {
	sessions  []*session // index i: account first+i (nil: failed)
	latencies []int64
	failures  int
	firstErr  string
	wall      float64
}

func loginAll(o *options) *loginResult {
	res := &loginResult{sessions: make([]*session, o.clients)}
	var mu sync.Mutex
	sem := make(chan struct{}, o.concurrency)
	var wg sync.WaitGroup
	t0 := time.Now()
	for i := 0; i < o.clients; i++ {
		sem <- struct{}{}
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			defer func() { <-sem }()
			began := time.Now()
			s, err := login(&o.login, "u"+strconv.Itoa(o.first+i))
			took := int64(time.Since(began))
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				res.failures++
				if res.firstErr == "" {
					res.firstErr = fmt.Sprintf("u%d: %v", o.first+i, err)
				}
				return
			}
			res.sessions[i] = s
			res.latencies = append(res.latencies, took)
		}(i)
	}
	wg.Wait()
	res.wall = time.Since(t0).Seconds()
	return res
}

func loginScenario(o *options) map[string]any {
	w := openWindow(o.serverPid)
	res := loginAll(o)
	out := map[string]any{}
	w.close(out)
	for _, s := range res.sessions {
		if s != nil {
			s.conn.Close()
		}
	}
	n := len(res.latencies)
	out["logins"] = n
	out["failures"] = res.failures
	out["concurrency"] = o.concurrency
	out["wall_s"] = res.wall
	out["logins_per_s"] = float64(n) / res.wall
	latencyStats(res.latencies, out)
	if res.firstErr != "" {
		out["first_error"] = res.firstErr
	}
	return out
}

// contactsOf mirrors generator.contacts_of: the nearest neighbours on a ring.
func contactsOf(index, count, contacts int) []int {
	half := contacts / 2
	if (count-1)/2 < half {
		half = (count - 1) / 2
	}
	seen := map[int]bool{}
	out := []int{}
	for d := -half; d <= half; d++ {
		if d == 0 {
			continue
		}
		c := ((index+d)%count + count) % count
		if !seen[c] {
			seen[c] = true
			out = append(out, c)
		}
	}
	sort.Ints(out)
	return out
}
