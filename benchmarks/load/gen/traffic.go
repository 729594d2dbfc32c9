// Traffic over bound sessions: one reader and one writer goroutine per
// client. A delivery found by any reader gives its sender a credit; the
// sender's writer wakes, takes all its credits and writes that many new
// stanzas (-write batch: in one write, as the Python generator does;
// -write single: one write per stanza, as a client sending each message when
// its user hits enter).
package main

import (
	"bytes"
	"errors"
	"math/rand"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

const markLen = 31 // ~T + 20 digits + S + 7 digits + kind

// kinds in counter order; 'R' is the receipt coming back for a 'q'
const kindOrder = "bfqRpir"

func kindIndex(k byte) int { return bytes.IndexByte([]byte(kindOrder), k) }

var filler = bytes.Repeat([]byte("Sounds good, see you at the station at half past seven; I'll bring the"+
	" tickets and some coffee for the train. "), 8)

type client struct {
	idx     int
	conn    net.Conn
	rest    []byte
	mu      sync.Mutex
	credits int
	extra   []byte
	lat     [len(kindOrder)][]int64
	kick    chan struct{}
	rng     *rand.Rand
	counter int
	lastP   map[int]int64 // sender -> stamp of the last presence update it got from them
}

type traffic struct {
	o         *options
	clients   []*client
	kinds     []byte
	cum       []float64
	closed    atomic.Bool // deliveries give credits (closed loop)
	measuring atomic.Bool
	sent      [len(kindOrder)]atomic.Int64
	delivered [len(kindOrder)]atomic.Int64
	measured  [len(kindOrder)]atomic.Int64
	seen      []atomic.Int32 // presence deliveries per sender
	lastRead  atomic.Int64   // nowNs() of the last bytes any client read (settle)
	presDup   atomic.Int64   // presence updates a client got twice from one sender
	presOld   atomic.Int64   // ... or after a newer one from that sender
	contacts  int            // deliveries a presence update owes
	pad       []byte
	readers   sync.WaitGroup
	writers   sync.WaitGroup
}

func newTraffic(o *options, sessions []*session) *traffic {
	t := &traffic{o: o}
	for i, s := range sessions {
		t.clients = append(t.clients, &client{idx: i, conn: s.conn, rest: s.rest,
			kick: make(chan struct{}, 1), rng: rand.New(rand.NewSource(int64(24 + i)))})
	}
	total := 0.0
	for _, k := range []byte(kindOrder) {
		if w := o.mix[k]; w > 0 {
			total += w
			t.kinds = append(t.kinds, k)
			t.cum = append(t.cum, total)
		}
	}
	t.seen = make([]atomic.Int32, len(t.clients))
	if o.contacts > 0 {
		t.contacts = len(contactsOf(0, len(t.clients), o.contacts))
	}
	pad := o.bodySize - markLen
	if pad < 0 {
		pad = 0
	}
	if pad > len(filler) {
		pad = len(filler)
	}
	t.pad = filler[:pad]
	for _, c := range t.clients {
		t.readers.Add(1)
		t.writers.Add(1)
		go t.read(c)
		go t.write(c)
	}
	return t
}

func (t *traffic) pick(rng *rand.Rand) byte {
	if len(t.kinds) == 1 {
		return t.kinds[0]
	}
	x := rng.Float64() * t.cum[len(t.cum)-1]
	for i, c := range t.cum {
		if x < c {
			return t.kinds[i]
		}
	}
	return t.kinds[len(t.kinds)-1]
}

func (t *traffic) credit(c *client, n int) {
	c.mu.Lock()
	c.credits += n
	c.mu.Unlock()
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

func appendMark(buf []byte, stamp int64, sender int, kind byte) []byte {
	buf = append(buf, '~', 'T')
	var d [20]byte
	for i := 19; i >= 0; i-- {
		d[i] = byte('0' + stamp%10)
		stamp /= 10
	}
	buf = append(buf, d[:]...)
	buf = append(buf, 'S')
	var s [7]byte
	for i := 6; i >= 0; i-- {
		s[i] = byte('0' + sender%10)
		sender /= 10
	}
	buf = append(buf, s[:]...)
	return append(buf, kind)
}

func (t *traffic) user(i int) string { return "u" + strconv.Itoa(t.o.first+i) }

func (t *traffic) stanza(buf []byte, c *client, kind byte, stamp int64) []byte {
	o := t.o
	n := len(t.clients)
	peer := c.idx
	if n > 1 {
		peer = c.rng.Intn(n - 1)
		if peer >= c.idx {
			peer++
		}
	}
	switch kind {
	case 'b', 'f', 'q':
		buf = append(buf, "<message type='chat' to='"...)
		buf = append(buf, t.user(peer)...)
		buf = append(buf, '@')
		buf = append(buf, o.login.domain...)
		if kind == 'f' {
			buf = append(buf, '/')
			buf = append(buf, o.login.resource...)
		}
		if kind == 'q' {
			c.counter++
			buf = append(buf, "' id='m"...)
			buf = strconv.AppendInt(buf, int64(c.counter), 10)
		}
		buf = append(buf, "'><body>"...)
		buf = append(buf, t.pad...)
		buf = appendMark(buf, stamp, c.idx, kind)
		buf = append(buf, "</body>"...)
		if kind == 'q' {
			buf = append(buf, "<active xmlns='http://jabber.org/protocol/chatstates'/>"+
				"<request xmlns='urn:xmpp:receipts'/>"...)
		}
		return append(buf, "</message>"...)
	case 'p':
		c.counter++
		if c.counter&1 == 1 {
			buf = append(buf, "<presence><show>away</show><status>"...)
		} else {
			buf = append(buf, "<presence><status>"...)
		}
		buf = appendMark(buf, stamp, c.idx, 'p')
		return append(buf, "</status></presence>"...)
	case 'i':
		buf = append(buf, "<iq type='get' to='"...)
		buf = append(buf, o.login.domain...)
		buf = append(buf, "' id='"...)
		buf = appendMark(buf, stamp, c.idx, 'i')
		return append(buf, "'><ping xmlns='urn:xmpp:ping'/></iq>"...)
	case 'r':
		c.counter++
		contact := (o.first + c.idx + 1) % o.total
		buf = append(buf, "<iq type='set' id='"...)
		buf = appendMark(buf, stamp, c.idx, 'r')
		buf = append(buf, "'><query xmlns='jabber:iq:roster'><item jid='u"...)
		buf = strconv.AppendInt(buf, int64(contact), 10)
		buf = append(buf, '@')
		buf = append(buf, o.login.domain...)
		buf = append(buf, "' name='c"...)
		buf = strconv.AppendInt(buf, int64(c.counter&1), 10)
		return append(buf, "'/></query></iq>"...)
	}
	return buf
}

func (t *traffic) write(c *client) {
	defer t.writers.Done()
	single := t.o.write == "single"
	var buf []byte
	for range c.kick {
		c.mu.Lock()
		n, extra := c.credits, c.extra
		c.credits, c.extra = 0, nil
		c.mu.Unlock()
		buf = append(buf[:0], extra...)
		stamp := nowNs()
		for k := 0; k < n; k++ {
			kind := t.pick(c.rng)
			buf = t.stanza(buf, c, kind, stamp)
			t.sent[kindIndex(kind)].Add(1)
			if single {
				if _, err := c.conn.Write(buf); err != nil {
					return
				}
				buf = buf[:0]
			}
		}
		if len(buf) > 0 {
			if _, err := c.conn.Write(buf); err != nil {
				return
			}
		}
	}
}

func digits(b []byte) (int64, bool) {
	var v int64
	for _, ch := range b {
		if ch < '0' || ch > '9' {
			return 0, false
		}
		v = v*10 + int64(ch-'0')
	}
	return v, true
}

func (t *traffic) read(c *client) {
	defer t.readers.Done()
	buf := make([]byte, 65536+markLen)
	keep := copy(buf, c.rest)
	c.rest = nil
	if keep > markLen {
		copy(buf, buf[keep-markLen:keep])
		keep = markLen
	}
	for {
		n, err := c.conn.Read(buf[keep:])
		if n > 0 {
			t.lastRead.Store(nowNs())
			keep = t.scan(c, buf, keep+n)
		}
		if err != nil {
			return
		}
	}
}

// scan handles the markers in buf[:end] and moves an incomplete one to the
// front; returns how many bytes it kept there.
func (t *traffic) scan(c *client, buf []byte, end int) int {
	data := buf[:end]
	now := nowNs()
	i := 0
	for {
		j := bytes.Index(data[i:], []byte("~T"))
		if j < 0 {
			break
		}
		p := i + j
		if end-p < markLen {
			return copy(buf, data[p:])
		}
		stamp, ok1 := digits(data[p+2 : p+22])
		sender, ok2 := digits(data[p+23 : p+30])
		kind := data[p+30]
		i = p + 2
		if !ok1 || !ok2 || data[p+22] != 'S' || int(sender) >= len(t.clients) {
			continue
		}
		i = p + markLen
		t.deliver(c, int(sender), kind, stamp, now)
	}
	if end > 0 && data[end-1] == '~' {
		buf[0] = '~'
		return 1
	}
	return 0
}

func (t *traffic) deliver(c *client, sender int, kind byte, stamp, now int64) {
	k := kindIndex(kind)
	if k < 0 {
		return
	}
	switch kind {
	case 'p':
		if sender == c.idx && !t.o.echo {
			return // the server's copy to the sender's own resource
		}
		// Duplicates and reordering per (receiver, sender): a sender's
		// stamps rise, one per write (exact with one update in flight; in
		// a mix two updates of one write share theirs); one reader a client.
		if c.lastP == nil {
			c.lastP = map[int]int64{}
		}
		if last, ok := c.lastP[sender]; ok && stamp <= last {
			if stamp == last {
				t.presDup.Add(1)
			} else {
				t.presOld.Add(1)
			}
		} else {
			c.lastP[sender] = stamp
		}
		if t.o.echo || t.seen[sender].Add(1) >= int32(t.contacts) {
			if !t.o.echo {
				t.seen[sender].Add(-int32(t.contacts))
			}
			if t.closed.Load() {
				t.credit(t.clients[sender], 1)
			}
		}
	case 'q':
		// XEP-0184 §5: the receipt goes back to the sender's full JID.
		var r []byte
		r = append(r, "<message to='"...)
		r = append(r, t.user(sender)...)
		r = append(r, '@')
		r = append(r, t.o.login.domain...)
		r = append(r, '/')
		r = append(r, t.o.login.resource...)
		r = append(r, "'><received xmlns='urn:xmpp:receipts' id='"...)
		r = appendMark(r, stamp, sender, 'R')
		r = append(r, "'/></message>"...)
		c.mu.Lock()
		c.extra = append(c.extra, r...)
		c.mu.Unlock()
		select {
		case c.kick <- struct{}{}:
		default:
		}
	default:
		if t.closed.Load() {
			t.credit(t.clients[sender], 1)
		}
	}
	t.delivered[k].Add(1)
	if t.measuring.Load() {
		t.measured[k].Add(1)
		c.mu.Lock()
		c.lat[k] = append(c.lat[k], now-stamp)
		c.mu.Unlock()
	}
}

func (t *traffic) sentTotal() int64 {
	var s int64
	for i := range t.sent {
		s += t.sent[i].Load()
	}
	return s
}

// expected deliveries for what was sent: a presence update owes one per
// contact, a message with a receipt request two (it and the receipt).
func (t *traffic) expected() int64 {
	e := t.sentTotal()
	p := t.sent[kindIndex('p')].Load()
	if !t.o.echo {
		e += p*int64(t.contacts) - p
	}
	return e + t.sent[kindIndex('q')].Load()
}

func (t *traffic) deliveredTotal() int64 {
	var s int64
	for i := range t.delivered {
		s += t.delivered[i].Load()
	}
	return s
}

// drain waits for the stanzas still in flight after the window: until every
// expected delivery came, or none came for limit seconds (what is missing
// then is lost), at most maxDrain in all. A server that is merely slow (a
// thousand clients' backlog on a shared core: deliveries seconds late) keeps
// delivering and is not counted as losing them.
func (t *traffic) drain(limit float64) float64 {
	const maxDrain = 120.0
	t0 := time.Now()
	last, progress := t.deliveredTotal(), time.Now()
	for {
		now := t.deliveredTotal()
		if now >= t.expected() || time.Since(t0).Seconds() >= maxDrain {
			break
		}
		if now != last {
			last, progress = now, time.Now()
		} else if time.Since(progress).Seconds() >= limit {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	return time.Since(t0).Seconds()
}

// latencies takes (and clears) the samples of every client, per kind.
func (t *traffic) latencies() [len(kindOrder)][]int64 {
	var out [len(kindOrder)][]int64
	for _, c := range t.clients {
		c.mu.Lock()
		for k := range c.lat {
			out[k] = append(out[k], c.lat[k]...)
			c.lat[k] = nil
		}
		c.mu.Unlock()
	}
	return out
}

func (t *traffic) stop() {
	for _, c := range t.clients {
		c.conn.Close()
	}
	t.readers.Wait() // no credit() after this
	for _, c := range t.clients {
		close(c.kick)
	}
	t.writers.Wait()
}

func login4traffic(o *options) (*traffic, *loginResult, error) {
	res := loginAll(o)
	if res.failures > 0 {
		for _, s := range res.sessions {
			if s != nil {
				s.conn.Close()
			}
		}
		return nil, res, errors.New(strconv.Itoa(res.failures) + " of " + strconv.Itoa(o.clients) +
			" logins failed: " + res.firstErr)
	}
	return newTraffic(o, res.sessions), res, nil
}

func (t *traffic) resetCounters() {
	for i := range t.sent {
		t.sent[i].Store(0)
		t.delivered[i].Store(0)
		t.measured[i].Store(0)
	}
	for i := range t.seen {
		t.seen[i].Store(0)
	}
}

// settle waits o.settle seconds after the logins, then until no client has
// read anything for quietFor and the server (-server-pid) used under a tenth
// of a core over that time (at most -max-settle more): with 1,000 clients a
// server may still be answering the logins' initial presence and probes
// seconds later (a presence carrying an update's marker, sent again as a
// probe's answer, would count as a delivery). Quiet reads alone are not
// enough: ejabberd with 1,000 clients and rosters of 50 went 300 ms without a
// write while it still had ~20 s of the logins' presence to work through at
// 100% of its core, and the measured window then started behind that backlog.
// Returns the seconds it waited and whether the server went quiet.
func (t *traffic) settle() (float64, bool) {
	const quietFor, idleShare = 300 * time.Millisecond, 0.1
	start := time.Now()
	time.Sleep(time.Duration(t.o.settle * float64(time.Second)))
	deadline := time.Now().Add(time.Duration(t.o.maxSettle * float64(time.Second)))
	pid := t.o.serverPid
	cpu0, at0 := treeCPU(pid), time.Now()
	for time.Now().Before(deadline) {
		idle := time.Duration(nowNs() - t.lastRead.Load())
		if idle < quietFor {
			time.Sleep(quietFor - idle)
			continue
		}
		since := time.Since(at0)
		if since < quietFor {
			time.Sleep(quietFor - since)
			continue
		}
		cpu := treeCPU(pid)
		if pid <= 0 || (cpu-cpu0)/since.Seconds() < idleShare {
			return time.Since(start).Seconds(), true
		}
		cpu0, at0 = cpu, time.Now()
	}
	return time.Since(start).Seconds(), false
}

func closedLoop(o *options) map[string]any {
	t, res, err := login4traffic(o)
	if err != nil {
		return map[string]any{"error": err.Error()}
	}
	settled, quiet := t.settle()
	t.resetCounters()
	t.closed.Store(true)
	for _, c := range t.clients {
		t.credit(c, o.inflight)
	}
	time.Sleep(time.Duration(o.warmup * float64(time.Second)))
	out := map[string]any{}
	w := openWindow(o.serverPid)
	t.measuring.Store(true)
	sent0 := t.sentTotal()
	t0 := time.Now()
	time.Sleep(time.Duration((o.duration - o.warmup) * float64(time.Second)))
	t.measuring.Store(false)
	window := time.Since(t0).Seconds()
	w.close(out)
	sentWin := t.sentTotal() - sent0
	t.closed.Store(false)
	drain := t.drain(o.drain)
	lats := t.latencies()
	t.stop()
	var every []int64
	var measured int64
	kinds := map[string]any{}
	for k := range lats {
		every = append(every, lats[k]...)
		measured += t.measured[k].Load()
		if t.sent[k].Load() > 0 || t.delivered[k].Load() > 0 {
			one := map[string]any{"sent": t.sent[k].Load(), "delivered": t.delivered[k].Load(),
				"per_s": float64(t.measured[k].Load()) / window}
			latencyStats(lats[k], one)
			kinds[kindName(kindOrder[k])] = one
		}
	}
	latencyStats(every, out)
	exp, del := t.expected(), t.deliveredTotal()
	out["clients"] = len(t.clients)
	out["inflight"] = o.inflight
	out["contacts"] = t.contacts
	out["body_size"] = o.bodySize
	out["write"] = o.write
	out["login_wall_s"] = res.wall
	out["settle_s"] = settled
	out["settled"] = quiet
	out["presence_duplicates"] = t.presDup.Load()
	out["presence_reordered"] = t.presOld.Load()
	out["window_s"] = window
	out["sent"] = t.sentTotal()
	out["sent_per_s"] = float64(sentWin) / window
	out["expected"] = exp
	out["delivered"] = del
	out["lost"] = exp - del
	out["drain_s"] = drain
	out["stanzas_per_s"] = float64(measured) / window
	out["msgs_per_s"] = float64(measured) / window
	out["kinds"] = kinds
	return out
}

func openLoop(o *options) map[string]any {
	t, res, err := login4traffic(o)
	if err != nil {
		return map[string]any{"error": err.Error()}
	}
	settled, quiet := t.settle()
	rng := rand.New(rand.NewSource(6))
	steps := []map[string]any{}
	stopped := ""
	n := len(t.clients)
	for _, rate := range o.rates {
		t.resetCounters()
		_ = t.latencies()
		step := map[string]any{"offered_per_s": rate}
		begin := time.Now()
		last := begin
		tokens := 0.0
		var w *cpuWindow
		var sent0 int64
		var t0 time.Time
		ticker := time.NewTicker(time.Millisecond)
		for now := range ticker.C {
			if w == nil && now.Sub(begin).Seconds() >= o.warmup {
				w = openWindow(o.serverPid)
				t.measuring.Store(true)
				sent0, t0 = t.sentTotal(), time.Now()
			}
			if now.Sub(begin).Seconds() >= o.duration {
				break
			}
			tokens += float64(rate) * now.Sub(last).Seconds()
			last = now
			for ; tokens >= 1; tokens-- {
				t.credit(t.clients[rng.Intn(n)], 1)
			}
		}
		ticker.Stop()
		t.measuring.Store(false)
		window := time.Since(t0).Seconds()
		w.close(step)
		sentWin := t.sentTotal() - sent0
		step["drain_s"] = t.drain(o.drain)
		lats := t.latencies()
		var every []int64
		var measured int64
		for k := range lats {
			every = append(every, lats[k]...)
			measured += t.measured[k].Load()
		}
		latencyStats(every, step)
		exp, del := t.expected(), t.deliveredTotal()
		step["window_s"] = window
		step["sent_per_s"] = float64(sentWin) / window
		step["sent"] = t.sentTotal()
		step["delivered"] = del
		step["lost"] = exp - del
		step["msgs_per_s"] = float64(measured) / window
		steps = append(steps, step)
		if exp-del > 0 {
			stopped = "losses at " + strconv.Itoa(rate) + "/s"
			break
		}
		if step["msgs_per_s"].(float64) < 0.95*float64(rate) || step["p99_ms"].(float64) > 1000 {
			stopped = "saturated at " + strconv.Itoa(rate) + "/s"
			break
		}
		if step["generator_cpu"].(float64) > 0.95 {
			stopped = "the generator saturated at " + strconv.Itoa(rate) + "/s"
			break
		}
	}
	t.stop()
	return map[string]any{"clients": len(t.clients), "login_wall_s": res.wall, "steps": steps,
		"stopped": stopped, "settle_s": settled, "settled": quiet}
}
