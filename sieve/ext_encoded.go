package sieve

import (
	"strconv"
	"strings"
	"unicode/utf8"
)

// encoded-character (RFC 5228 2.4.2.4): "${hex:..}" and "${unicode:..}" in
// strings are decoded at compile time, before variable expansion.

func init() { registerCapability("encoded-character") }

// decodeEncodedCharacters replaces every well-formed encoded sequence in s;
// malformed ones stay literal. A Unicode value outside 0-D7FF and E000-10FFFF
// is an error (RFC 5228 2.4.2.4).
func decodeEncodedCharacters(s string) (string, string) {
	if !strings.Contains(s, "${") {
		return s, ""
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		j := strings.Index(s[i:], "${")
		if j < 0 {
			b.WriteString(s[i:])
			break
		}
		b.WriteString(s[i : i+j])
		i += j
		end := strings.IndexByte(s[i:], '}')
		if end < 0 {
			b.WriteString(s[i:])
			break
		}
		body := s[i+2 : i+end]
		colon := strings.IndexByte(body, ':')
		decoded, ok, errMsg := "", false, ""
		if colon > 0 {
			kind := strings.ToLower(body[:colon])
			switch kind {
			case "hex":
				decoded, ok = decodeHexPairs(body[colon+1:])
			case "unicode":
				decoded, ok, errMsg = decodeUnicode(body[colon+1:])
			}
		}
		if errMsg != "" {
			return "", errMsg
		}
		if !ok {
			b.WriteString("${")
			i += 2
			continue
		}
		b.WriteString(decoded)
		i += end + 1
	}
	return b.String(), ""
}

func isBlank(r rune) bool { return r == ' ' || r == '\t' || r == '\r' || r == '\n' }

func decodeHexPairs(seq string) (string, bool) {
	fields := strings.FieldsFunc(seq, isBlank)
	if len(fields) == 0 {
		return "", false
	}
	var b strings.Builder
	for _, f := range fields {
		if len(f) > 2 {
			return "", false
		}
		v, err := strconv.ParseUint(f, 16, 8)
		if err != nil {
			return "", false
		}
		b.WriteByte(byte(v))
	}
	return b.String(), true
}

func decodeUnicode(seq string) (string, bool, string) {
	fields := strings.FieldsFunc(seq, isBlank)
	if len(fields) == 0 {
		return "", false, ""
	}
	var b strings.Builder
	for _, f := range fields {
		v, err := strconv.ParseUint(f, 16, 64)
		if err != nil {
			if strings.Trim(f, "0123456789abcdefABCDEF") == "" {
				return "", false, "encoded character " + f + " is not a Unicode scalar value"
			}
			return "", false, ""
		}
		if v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF) {
			return "", false, "encoded character " + f + " is not a Unicode scalar value"
		}
		b.WriteRune(rune(v))
	}
	if !utf8.ValidString(b.String()) {
		return "", false, ""
	}
	return b.String(), true, ""
}
