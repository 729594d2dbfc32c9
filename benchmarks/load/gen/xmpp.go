// Login of one client: stream, STARTTLS or direct TLS (XEP-0368), SASL
// (SCRAM-SHA-1/256 per RFC 5802/7677, or PLAIN over TLS, RFC 4616), resource
// binding (RFC 6120 §7) and the optional session (RFC 3921 §3), then initial
// presence. Negotiation matches bytes, not XML trees: enough for any
// RFC 6120 server, and no parser on the generator's hot path.
package main

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"io"
	"net"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
)

type loginConfig struct {
	addr     string
	domain   string
	password string
	tlsMode  string // direct | starttls | none
	mech     string // PLAIN | SCRAM-SHA-1 | SCRAM-SHA-256
	tlsConf  *tls.Config
	resource string
	nodelay  bool
	timeout  time.Duration
}

// session is a bound client: its connection and the bytes read past the
// bind result (handed to the traffic reader).
type session struct {
	conn net.Conn
	rest []byte
}

var (
	reChallenge = regexp.MustCompile(`<challenge[^>]*>([^<]*)</challenge>`)
	reSuccess   = regexp.MustCompile(`<success[^>]*?(?:/>|>([^<]*)</success>)`)
	reFailure   = regexp.MustCompile(`<failure[\s\S]*?(?:/>|</failure>)`)
	reStreamErr = regexp.MustCompile(`<stream:error>[\s\S]*?</stream:error>`)
)

type reader struct {
	conn net.Conn
	buf  []byte
	tmp  []byte
}

func (r *reader) fill() error {
	n, err := r.conn.Read(r.tmp)
	if n > 0 {
		r.buf = append(r.buf, r.tmp[:n]...)
	}
	if err != nil && n == 0 {
		if err == io.EOF {
			return errors.New("the server closed the connection")
		}
		return err
	}
	return nil
}

// until reads until one of the markers appears; returns the index of the one found.
func (r *reader) until(markers ...string) (int, error) {
	for {
		for i, m := range markers {
			if bytes.Contains(r.buf, []byte(m)) {
				return i, nil
			}
		}
		if loc := reStreamErr.Find(r.buf); loc != nil {
			return -1, fmt.Errorf("stream error: %s", loc)
		}
		if err := r.fill(); err != nil {
			return -1, err
		}
	}
}

// features reads a whole <stream:features/> and drops what came before and it.
func (r *reader) features() (string, error) {
	for {
		s := string(r.buf)
		if i := strings.Index(s, "<stream:features"); i >= 0 {
			rest := s[i:]
			if j := strings.Index(rest, "</stream:features>"); j >= 0 {
				r.buf = r.buf[i+j+len("</stream:features>"):]
				return rest[:j], nil
			}
			if strings.HasPrefix(rest, "<stream:features/>") {
				r.buf = r.buf[i+len("<stream:features/>"):]
				return "", nil
			}
		}
		if loc := reStreamErr.Find(r.buf); loc != nil {
			return "", fmt.Errorf("stream error: %s", loc)
		}
		if err := r.fill(); err != nil {
			return "", err
		}
	}
}

func header(domain string) []byte {
	return []byte("<?xml version='1.0'?><stream:stream to='" + domain +
		"' version='1.0' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>")
}

// login connects account user and returns the bound session.
func login(cfg *loginConfig, user string) (*session, error) {
	raw, err := net.DialTimeout("tcp", cfg.addr, cfg.timeout)
	if err != nil {
		return nil, err
	}
	if tcp, ok := raw.(*net.TCPConn); ok {
		_ = tcp.SetNoDelay(cfg.nodelay)
	}
	_ = raw.SetDeadline(time.Now().Add(cfg.timeout))
	var conn net.Conn = raw
	fail := func(e error) (*session, error) { raw.Close(); return nil, e }
	if cfg.tlsMode == "direct" {
		tc := tls.Client(raw, cfg.tlsConf)
		if err := tc.Handshake(); err != nil {
			return fail(fmt.Errorf("TLS handshake: %w", err))
		}
		conn = tc
	}
	r := &reader{conn: conn, tmp: make([]byte, 16384)}
	if _, err := conn.Write(header(cfg.domain)); err != nil {
		return fail(err)
	}
	feats, err := r.features()
	if err != nil {
		return fail(err)
	}
	if cfg.tlsMode == "starttls" {
		if !strings.Contains(feats, "<starttls") {
			return fail(errors.New("no STARTTLS offered"))
		}
		if _, err := conn.Write([]byte("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")); err != nil {
			return fail(err)
		}
		if i, err := r.until("<proceed", "<failure"); err != nil || i != 0 {
			return fail(fmt.Errorf("STARTTLS refused: %v %q", err, r.buf))
		}
		tc := tls.Client(raw, cfg.tlsConf)
		if err := tc.Handshake(); err != nil {
			return fail(fmt.Errorf("TLS handshake: %w", err))
		}
		conn = tc
		r = &reader{conn: conn, tmp: r.tmp}
		if _, err := conn.Write(header(cfg.domain)); err != nil {
			return fail(err)
		}
		if feats, err = r.features(); err != nil {
			return fail(err)
		}
	}
	if err := authenticate(cfg, r, conn, user, feats); err != nil {
		return fail(err)
	}
	if _, err := conn.Write(header(cfg.domain)); err != nil {
		return fail(err)
	}
	if feats, err = r.features(); err != nil {
		return fail(err)
	}
	bind := "<iq type='set' id='bind1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>" +
		cfg.resource + "</resource></bind></iq>"
	if _, err := conn.Write([]byte(bind)); err != nil {
		return fail(err)
	}
	if i, err := r.until("</jid>", "type='error'", "type=\"error\""); err != nil || i != 0 {
		return fail(fmt.Errorf("bind failed: %v %q", err, r.buf))
	}
	cut(r, "</iq>")
	if strings.Contains(feats, "urn:ietf:params:xml:ns:xmpp-session") && !strings.Contains(feats, "optional") {
		if _, err := conn.Write([]byte("<iq type='set' id='sess1'><session xmlns='urn:ietf:params:xml:ns:xmpp-session'/></iq>")); err != nil {
			return fail(err)
		}
		if _, err := r.until("sess1"); err != nil {
			return fail(err)
		}
		cut(r, "sess1")
		cut(r, ">")
	}
	if _, err := conn.Write([]byte("<presence/>")); err != nil {
		return fail(err)
	}
	_ = raw.SetDeadline(time.Time{})
	return &session{conn: conn, rest: append([]byte(nil), r.buf...)}, nil
}

func cut(r *reader, marker string) {
	if i := bytes.Index(r.buf, []byte(marker)); i >= 0 {
		r.buf = r.buf[i+len(marker):]
	}
}

func authenticate(cfg *loginConfig, r *reader, conn net.Conn, user string, feats string) error {
	if !strings.Contains(feats, "<mechanism>"+cfg.mech+"</mechanism>") {
		return fmt.Errorf("mechanism %s not offered: %s", cfg.mech, feats)
	}
	ns := "xmlns='urn:ietf:params:xml:ns:xmpp-sasl'"
	if cfg.mech == "PLAIN" {
		msg := base64.StdEncoding.EncodeToString([]byte("\x00" + user + "\x00" + cfg.password))
		if _, err := conn.Write([]byte("<auth " + ns + " mechanism='PLAIN'>" + msg + "</auth>")); err != nil {
			return err
		}
		return saslOutcome(r)
	}
	var h func() hash.Hash
	switch cfg.mech {
	case "SCRAM-SHA-1":
		h = sha1.New
	case "SCRAM-SHA-256":
		h = sha256.New
	default:
		return fmt.Errorf("unknown mechanism %s", cfg.mech)
	}
	nonceRaw := make([]byte, 18)
	_, _ = rand.Read(nonceRaw)
	cnonce := base64.RawStdEncoding.EncodeToString(nonceRaw)
	first := "n=" + user + ",r=" + cnonce
	msg := base64.StdEncoding.EncodeToString([]byte("n,," + first))
	if _, err := conn.Write([]byte("<auth " + ns + " mechanism='" + cfg.mech + "'>" + msg + "</auth>")); err != nil {
		return err
	}
	if i, err := r.until("</challenge>", "</failure>", "<failure/>"); err != nil || i != 0 {
		return fmt.Errorf("SASL: %v %q", err, r.buf)
	}
	m := reChallenge.FindSubmatch(r.buf)
	if m == nil {
		return fmt.Errorf("SASL: no challenge in %q", r.buf)
	}
	cut(r, "</challenge>")
	serverFirst, err := base64.StdEncoding.DecodeString(string(m[1]))
	if err != nil {
		return err
	}
	var nonce, salt64 string
	iters := 0
	for _, part := range strings.Split(string(serverFirst), ",") {
		switch {
		case strings.HasPrefix(part, "r="):
			nonce = part[2:]
		case strings.HasPrefix(part, "s="):
			salt64 = part[2:]
		case strings.HasPrefix(part, "i="):
			iters, _ = strconv.Atoi(part[2:])
		}
	}
	salt, err := base64.StdEncoding.DecodeString(salt64)
	if err != nil || iters < 1 || !strings.HasPrefix(nonce, cnonce) {
		return fmt.Errorf("SASL: bad server-first %q", serverFirst)
	}
	salted := saltedPassword(cfg.mech, cfg.password, salt, iters, h)
	clientKey := mac(h, salted, []byte("Client Key"))
	sum := h()
	sum.Write(clientKey)
	storedKey := sum.Sum(nil)
	final := "c=biws,r=" + nonce
	authMessage := first + "," + string(serverFirst) + "," + final
	signature := mac(h, storedKey, []byte(authMessage))
	proof := make([]byte, len(clientKey))
	for i := range proof {
		proof[i] = clientKey[i] ^ signature[i]
	}
	final += ",p=" + base64.StdEncoding.EncodeToString(proof)
	resp := "<response " + ns + ">" + base64.StdEncoding.EncodeToString([]byte(final)) + "</response>"
	if _, err := conn.Write([]byte(resp)); err != nil {
		return err
	}
	return saslOutcome(r)
}

func saslOutcome(r *reader) error {
	i, err := r.until("<success", "<failure")
	if err != nil {
		return err
	}
	if i == 1 {
		for reFailure.Find(r.buf) == nil {
			if err := r.fill(); err != nil {
				break
			}
		}
		return fmt.Errorf("SASL failure: %q", r.buf)
	}
	for reSuccess.Find(r.buf) == nil {
		if err := r.fill(); err != nil {
			return err
		}
	}
	loc := reSuccess.FindIndex(r.buf)
	r.buf = r.buf[loc[1]:]
	return nil
}

func mac(h func() hash.Hash, key, data []byte) []byte {
	m := hmac.New(h, key)
	m.Write(data)
	return m.Sum(nil)
}

// SaltedPassword cache: a real client may keep it (RFC 5802 §5.1), and
// PBKDF2 per login would make the generator the bottleneck of a login storm.
var (
	saltedMu    sync.Mutex
	saltedCache = map[string][]byte{}
)

func saltedPassword(mech, password string, salt []byte, iters int, h func() hash.Hash) []byte {
	key := mech + "\x00" + password + "\x00" + string(salt) + "\x00" + strconv.Itoa(iters)
	saltedMu.Lock()
	hit, ok := saltedCache[key]
	saltedMu.Unlock()
	if ok {
		return hit
	}
	// Hi() of RFC 5802 §2.2: PBKDF2 with one block of output.
	prf := hmac.New(h, []byte(password))
	prf.Write(salt)
	prf.Write([]byte{0, 0, 0, 1})
	u := prf.Sum(nil)
	out := append([]byte(nil), u...)
	for i := 1; i < iters; i++ {
		prf.Reset()
		prf.Write(u)
		u = prf.Sum(u[:0])
		for j := range out {
			out[j] ^= u[j]
		}
	}
	saltedMu.Lock()
	saltedCache[key] = out
	saltedMu.Unlock()
	return out
}
