// echo_server: a trivial XMPP endpoint to validate the load generator
// (benchmarks/load/gen) against (issue 24). It negotiates just enough of a
// c2s stream (STARTTLS or direct TLS, SASL PLAIN or SCRAM accepted without
// checking, resource binding) and then writes every byte it reads back to
// the same connection: the cheapest possible "server", so a generator that
// delivers N stanzas/s through it can generate at least N on real servers.
// Standard library only; one process, pinned by its parent.
package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"flag"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"os"
	"strings"
	"time"
)

var (
	domain  = flag.String("domain", "localhost", "XMPP domain")
	mode    = flag.String("tls", "starttls", "direct | starttls | none")
	listen  = flag.String("listen", "127.0.0.1:0", "address to listen on")
	certOut = flag.String("cert-out", "", "write the self-signed certificate (PEM) here")
	portOut = flag.String("port-out", "", "write the port here once listening")
)

func main() {
	flag.Parse()
	cert := selfSigned()
	conf := &tls.Config{Certificates: []tls.Certificate{cert}}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	if *portOut != "" {
		_ = os.WriteFile(*portOut+".tmp", []byte(fmt.Sprint(port)), 0o644)
		_ = os.Rename(*portOut+".tmp", *portOut)
	}
	for {
		c, err := ln.Accept()
		if err != nil {
			log.Fatal(err)
		}
		_ = c.(*net.TCPConn).SetNoDelay(true)
		go serve(c, conf)
	}
}

func selfSigned() tls.Certificate {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: *domain},
		DNSNames: []string{*domain}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(24 * time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		log.Fatal(err)
	}
	if *certOut != "" {
		_ = os.WriteFile(*certOut, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

type conn struct {
	c   net.Conn
	buf []byte
}

func (s *conn) until(marker string) bool {
	tmp := make([]byte, 4096)
	for !bytes.Contains(s.buf, []byte(marker)) {
		n, err := s.c.Read(tmp)
		if n > 0 {
			s.buf = append(s.buf, tmp[:n]...)
		}
		if err != nil {
			return false
		}
	}
	i := bytes.Index(s.buf, []byte(marker))
	s.buf = s.buf[i+len(marker):]
	return true
}

// header reads the client's stream header and answers with ours and features.
func (s *conn) header(features string) bool {
	if !s.until("<stream:stream") || !s.until(">") {
		return false
	}
	_, err := io.WriteString(s.c, "<?xml version='1.0'?><stream:stream xmlns='jabber:client'"+
		" xmlns:stream='http://etherx.jabber.org/streams' version='1.0' from='"+*domain+
		"' id='echo'><stream:features>"+features+"</stream:features>")
	return err == nil
}

const mechs = "<mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>PLAIN</mechanism>" +
	"</mechanisms>"

func serve(raw net.Conn, conf *tls.Config) {
	defer raw.Close()
	s := &conn{c: raw}
	if *mode == "direct" {
		tc := tls.Server(raw, conf)
		if tc.Handshake() != nil {
			return
		}
		s.c = tc
	}
	if *mode == "starttls" {
		if !s.header("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls>") ||
			!s.until("<starttls") || !s.until(">") {
			return
		}
		if _, err := io.WriteString(raw, "<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>"); err != nil {
			return
		}
		tc := tls.Server(raw, conf)
		if tc.Handshake() != nil {
			return
		}
		s = &conn{c: tc}
	}
	if !s.header(mechs) || !s.until("</auth>") {
		return
	}
	if _, err := io.WriteString(s.c, "<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>"); err != nil {
		return
	}
	bind := "<bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/>"
	if !s.header(bind) || !s.until("<resource>") {
		return
	}
	res := s.buf
	if i := bytes.Index(res, []byte("</resource>")); i >= 0 {
		res = res[:i]
	} else {
		res = []byte("echo")
	}
	jid := "echo@" + *domain + "/" + strings.TrimSpace(string(res))
	if !s.until("</iq>") {
		return
	}
	_, err := io.WriteString(s.c, "<iq type='result' id='bind1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><jid>"+
		jid+"</jid></bind></iq>")
	if err != nil {
		return
	}
	if len(s.buf) > 0 {
		if _, err := s.c.Write(s.buf); err != nil {
			return
		}
	}
	buf := make([]byte, 65536)
	_, _ = io.CopyBuffer(s.c, struct{ io.Reader }{s.c}, buf)
}
