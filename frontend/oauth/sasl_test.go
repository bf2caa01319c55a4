package oauth

import (
	"errors"
	"testing"
)

func TestParseOAuthBearer(t *testing.T) {
	for _, tc := range []struct {
		msg         string
		user, token string
		dummy       bool
	}{
		{msg: "n,a=user@example.com,\x01host=server.example.com\x01port=143\x01auth=Bearer vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg==\x01\x01", user: "user@example.com", token: "vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg=="}, // RFC 7628 4.1
		{msg: "n,,\x01auth=bearer  a.b.c\x01\x01", token: "a.b.c"},
		{msg: "y,a=a=3Db=2Cc,\x01auth=Bearer t\x01\x01", user: "a=b,c", token: "t"},
		{msg: "\x01", dummy: true},
	} {
		got, err := ParseOAuthBearer([]byte(tc.msg))
		if err != nil || got.User != tc.user || got.Token != tc.token || got.Dummy != tc.dummy {
			t.Errorf("ParseOAuthBearer(%q) = %+v, %v", tc.msg, got, err)
		}
	}
	for _, bad := range []string{
		"", "n,,", "n,,\x01\x01", "p=tls-unique,,\x01auth=Bearer t\x01\x01", "n,b=x,\x01auth=Bearer t\x01\x01",
		"n,a=x=41,\x01auth=Bearer t\x01\x01", "n,,\x01auth=Bearer t\x01auth=Bearer u\x01\x01", "n,,\x01auth=Bearer \x01\x01",
		"n,,\x01auth=Bearer t t\x01\x01", "n,,\x011=x\x01auth=Bearer t\x01\x01", "n,,\x01auth=Bearer t",
	} {
		if got, err := ParseOAuthBearer([]byte(bad)); !errors.Is(err, ErrMalformed) {
			t.Errorf("ParseOAuthBearer(%q) = %+v, %v; want ErrMalformed", bad, got, err)
		}
	}
}

func TestParseXOAuth2(t *testing.T) {
	got, err := ParseXOAuth2([]byte("user=someuser@example.com\x01auth=Bearer ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg\x01\x01"))
	if err != nil || got.User != "someuser@example.com" || got.Token != "ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg" {
		t.Fatalf("ParseXOAuth2 = %+v, %v", got, err)
	}
	if got, err := ParseXOAuth2(nil); err != nil || !got.Dummy {
		t.Fatalf("empty XOAUTH2 response = %+v, %v", got, err)
	}
	for _, bad := range []string{"user=\x01auth=Bearer t\x01\x01", "auth=Bearer t\x01\x01", "user=u\x01auth=Bearer t\x01"} {
		if _, err := ParseXOAuth2([]byte(bad)); !errors.Is(err, ErrMalformed) {
			t.Errorf("ParseXOAuth2(%q): %v", bad, err)
		}
	}
}

// FuzzParse: the parsers never panic, and what they accept is a b64token (RFC 6750 2.1)
// no longer than the message.
func FuzzParse(f *testing.F) {
	for _, seed := range []string{
		"n,a=user@example.com,\x01host=server.example.com\x01port=143\x01auth=Bearer vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg==\x01\x01",
		"user=u@example.com\x01auth=Bearer a.b.c\x01\x01", "\x01", "n,,\x01auth=Bearer t\x01\x01", "y,a=a=3D=2C,\x01auth=Bearer t\x01\x01",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, msg []byte) {
		for _, parse := range []func([]byte) (ClientResponse, error){ParseOAuthBearer, ParseXOAuth2} {
			r, err := parse(msg)
			if err != nil || r.Dummy {
				continue
			}
			if r.Token == "" || len(r.Token) > len(msg) {
				t.Fatalf("%q: token %q", msg, r.Token)
			}
			if _, err := bearerToken("Bearer " + r.Token); err != nil {
				t.Fatalf("%q: token %q is no b64token", msg, r.Token)
			}
		}
	})
}
