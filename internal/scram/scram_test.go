package scram

import (
	"encoding/base64"
	"testing"
)

// TestVectors: the exchanges of RFC 7677 3 (SCRAM-SHA-256) and RFC 5802 5 (SCRAM-SHA-1),
// checked from both sides: the client's messages, and the server's keys, proof check and
// signature.
func TestVectors(t *testing.T) {
	for _, v := range []struct {
		hash                                 Hash
		nonce, serverFirst, final, serverEnd string
	}{
		{SHA256, "rOprNGfwEbeRWgbNEkqO",
			"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
			"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
			"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="},
		{SHA1, "fyko+d2lbbFgONRv9qkxdawL",
			"r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096",
			"c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=",
			"v=rmF9pqV8S7suAoZWja4dJRkFsKQ="},
	} {
		c := &Client{Hash: v.hash, Username: "user", Password: "pencil", Nonce: v.nonce}
		if got, want := string(c.First()), "n,,n=user,r="+v.nonce; got != want {
			t.Fatalf("%s client-first %q, want %q", v.hash.Name, got, want)
		}
		final, err := c.Final([]byte(v.serverFirst))
		if err != nil || string(final) != v.final {
			t.Fatalf("%s client-final %q (%v), want %q", v.hash.Name, final, err, v.final)
		}
		if err := c.Verify([]byte(v.serverEnd)); err != nil {
			t.Fatalf("%s server-final: %v", v.hash.Name, err)
		}

		keys := v.hash.Derive("pencil", saltOf(t, v.serverFirst), 4096)
		authMessage := "n=user,r=" + v.nonce + "," + v.serverFirst + "," + v.final[:len(v.final)-len(",p=")-base64.StdEncoding.EncodedLen(v.hash.New().Size())]
		proof, _ := base64.StdEncoding.DecodeString(v.final[len(v.final)-base64.StdEncoding.EncodedLen(v.hash.New().Size()):])
		if !v.hash.VerifyProof(keys.StoredKey, authMessage, proof) {
			t.Fatalf("%s: the RFC's proof is refused", v.hash.Name)
		}
		proof[0] ^= 1
		if v.hash.VerifyProof(keys.StoredKey, authMessage, proof) {
			t.Fatalf("%s: a changed proof is accepted", v.hash.Name)
		}
		if got := "v=" + base64.StdEncoding.EncodeToString(v.hash.ServerSignature(keys.ServerKey, authMessage)); got != v.serverEnd {
			t.Fatalf("%s server signature %q, want %q", v.hash.Name, got, v.serverEnd)
		}
	}
}

func saltOf(t *testing.T, serverFirst string) []byte {
	for _, attr := range splitComma(serverFirst) {
		if len(attr) > 2 && attr[:2] == "s=" {
			salt, err := base64.StdEncoding.DecodeString(attr[2:])
			if err != nil {
				t.Fatal(err)
			}
			return salt
		}
	}
	t.Fatalf("no salt in %q", serverFirst)
	return nil
}

func splitComma(s string) []string {
	var out []string
	start := 0
	for i := 0; i <= len(s); i++ {
		if i == len(s) || s[i] == ',' {
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return out
}

// TestEscapeName: RFC 5802 5.1 saslname.
func TestEscapeName(t *testing.T) {
	for _, name := range []string{"a=b,c@example.com", "plain", "=,=,"} {
		got, ok := UnescapeName(EscapeName(name))
		if !ok || got != name {
			t.Fatalf("round trip of %q: %q %v", name, got, ok)
		}
	}
	for _, bad := range []string{"a=", "a=2", "a=2D", "=xx"} {
		if _, ok := UnescapeName(bad); ok {
			t.Fatalf("%q accepted", bad)
		}
	}
}

// BenchmarkDerive is the cost of one key derivation at the default count: what a client
// pays per SCRAM login, and the service per SetPassword.
func BenchmarkDerive(b *testing.B) {
	salt := make([]byte, SaltLen)
	for b.Loop() {
		SHA256.Derive("correct horse battery staple", salt, DefaultIterations)
	}
}
