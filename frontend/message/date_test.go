package message

import (
	"math/rand/v2"
	"net/mail"
	"testing"
	"time"
)

// dateSamples are Date fields in the canonical form and around it: every branch of
// net/mail.ParseDate's cutting and of its layouts, and near misses of the canonical form.
var dateSamples = []string{
	"Mon, 02 Jan 2006 15:04:05 -0700",
	"Mon, 2 Jan 2006 15:04:05 +0000",
	"Tue, 31 Dec 2024 23:59:59 +1400",
	"Fri, 29 Feb 2008 00:00:00 -1200",
	"Sun, 30 Feb 2008 00:00:00 -0000", // no such day
	"Xyz, 02 Jan 2006 15:04:05 -0700", // no such day name
	"Monday, 02 Jan 2006 15:04:05 -0700",
	"Mon, 02 Jan 06 15:04:05 -0700", // two-digit year: a later layout
	"Mon, 02 Jan 2006 15:04 -0700",  // no seconds: a later layout
	"02 Jan 2006 15:04:05 -0700",
	"2 Jan 2006 15:04:05 +0100",
	" Mon, 02 Jan 2006 15:04:05 -0700",
	"\tMon, 02 Jan 2006 15:04:05 -0700",
	"Mon, 02 Jan 2006 15:04:05 -0700 (PDT)",
	"Mon, 02 Jan 2006 15:04:05 -0700 (unclosed",
	"Mon, 02 Jan 2006 15:04:05 -07000",
	"Mon, 02 Jan 2006 15:04:05 -070",
	"Mon, 02 Jan 2006 15:04:05 +07:00",
	"Mon, 02 Jan 2006 15:04:05 GMT",
	"Mon, 02 Jan 2006 15:04:05 MST",
	"Mon, 02 Jan 2006 15:04:05 UT",
	"Thu, 20 Nov 1997 09:55:06 MDT (MDT)",
	"Mon, 02\r\n Jan 2006 15:04:05 -0700",
	"Mon, 02 Jan 2006\r15:04:05 -0700",
	"Mon, 02 Jan 2006\n15:04:05 -0700",
	"Mon,  02 Jan 2006 15:04:05 -0700",
	"Mon, 02 Jan 2006  15:04:05 -0700",
	"Mon, 02 Jan 2006 15:04:05  -0700",
	"Mon, 02 Jan 2006 25:04:05 -0700",
	"Mon, 02 Jan 2006 15:04:60 -0700",
	"Mon, 02 Jan -2006 15:04:05 -0700",
	"mon, 02 jan 2006 15:04:05 -0700",
	"Mon, 02 Jan 2006 15:04:05 -9999",
	"Mon, 02 Jan 2006 15:04:05 +ABCD",
	"Mon, 02 Jan 2006 15:04:05 -0700x",
	"",
	"-0700",
	"garbage",
}

// TestParseDateMatchesNetMail: ParseDate answers as net/mail.ParseDate for the samples and
// for random edits of them (the same instant and zone offset, or an error for both).
func TestParseDateMatchesNetMail(t *testing.T) {
	check := func(date string) {
		t.Helper()
		got, gotErr := ParseDate(date)
		want, wantErr := mail.ParseDate(date)
		if (gotErr != nil) != (wantErr != nil) || !sameDate(got, want) {
			t.Fatalf("ParseDate(%q) = %v, %v; net/mail: %v, %v", date, got, gotErr, want, wantErr)
		}
	}
	fast := 0
	for _, d := range dateSamples {
		check(d)
		if canonicalShape(d) {
			fast++
		}
	}
	if fast < 10 {
		t.Fatalf("only %d samples take the canonical path", fast)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	const alphabet = "0123456789 +-:,()\t\r\nMonTueJanFebDecGMTUT"
	for i := 0; i < 20000; i++ {
		b := []byte(dateSamples[rng.IntN(5)])
		for e := rng.IntN(3) + 1; e > 0; e-- {
			at := rng.IntN(len(b) + 1)
			switch rng.IntN(3) {
			case 0: // replace
				if at < len(b) {
					b[at] = alphabet[rng.IntN(len(alphabet))]
				}
			case 1: // insert
				b = append(b[:at], append([]byte{alphabet[rng.IntN(len(alphabet))]}, b[at:]...)...)
			default: // delete
				if at < len(b) {
					b = append(b[:at], b[at+1:]...)
				}
			}
		}
		check(string(b))
	}
}

func sameDate(a, b time.Time) bool {
	_, aOff := a.Zone()
	_, bOff := b.Zone()
	return a.Equal(b) && aOff == bOff
}

func FuzzParseDate(f *testing.F) {
	for _, d := range dateSamples {
		f.Add(d)
	}
	f.Fuzz(func(t *testing.T, date string) {
		got, gotErr := ParseDate(date)
		want, wantErr := mail.ParseDate(date)
		if (gotErr != nil) != (wantErr != nil) || !sameDate(got, want) {
			t.Fatalf("ParseDate(%q) = %v, %v; net/mail: %v, %v", date, got, gotErr, want, wantErr)
		}
	})
}

func BenchmarkParseDate(b *testing.B) {
	const date = "Mon, 05 Jan 2026 08:17:00 +0000"
	b.Run("message", func(b *testing.B) {
		for b.Loop() {
			if _, err := ParseDate(date); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("net/mail", func(b *testing.B) {
		for b.Loop() {
			if _, err := mail.ParseDate(date); err != nil {
				b.Fatal(err)
			}
		}
	})
}
