package outbound

import (
	"testing"
	"time"

	"github.com/strata-mail/strata/sieve"
)

// FuzzBuild feeds any delivered message, envelope and action arguments to
// the builders: they return a message or an error, never panic, and what
// they build has an envelope Enqueue accepts.
func FuzzBuild(f *testing.F) {
	f.Add([]byte(original), "alice@example.org", "bob@example.com", "carol@example.net", "Auto: hi", "away", false)
	f.Add([]byte("Subject: x\n\nbody"), "", "bob@example.com", "bob@example.com", "", "Content-Type: text/html\n\n<p>", true)
	f.Add([]byte("\r\n\r\n"), "a@b", "c@d", "e@f", "\xff", "\r\n.\r\n", false)
	f.Fuzz(func(t *testing.T, msg []byte, sender, rcpt, to, subject, reason string, isMIME bool) {
		d := Delivery{Sender: sender, Recipient: rcpt, Message: msg, Hostname: "mx.example.com", Now: time.Unix(0, 0)}
		actions := []sieve.Action{
			{Kind: sieve.ActionRedirect, Address: to},
			{Kind: sieve.ActionVacation, Vacation: &sieve.VacationReply{To: sender, From: to, Subject: subject, Body: reason, MIME: isMIME, Send: true}},
			{Kind: sieve.ActionReject, Reason: reason},
		}
		out, _ := Build(d, actions, Policy{})
		for _, o := range out {
			if err := o.Envelope.check(); err != nil {
				t.Errorf("%s built with a bad envelope %+v: %v", o.Kind, o.Envelope, err)
			}
			if len(o.Message) == 0 {
				t.Errorf("%s built an empty message", o.Kind)
			}
		}
	})
}

// FuzzSpoolFile reads any bytes as a spool file: an error or a message
// whose envelope checks, never a panic.
func FuzzSpoolFile(f *testing.F) {
	f.Add([]byte("strata-outbound 1\n{\"from\":\"\",\"to\":[\"a@b\"],\"size\":2}\nhi"))
	f.Add([]byte("strata-outbound 1\n{\"to\":null}\n"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		m, body, err := parseSpoolFile(raw)
		if err != nil {
			return
		}
		if err := m.env.check(); err != nil || int64(len(body)) != m.size {
			t.Errorf("accepted %+v with %d bytes: %v", m, len(body), err)
		}
	})
}
