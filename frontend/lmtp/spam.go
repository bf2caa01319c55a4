package lmtp

import (
	"strconv"
	"strings"

	"github.com/strata-mail/strata/frontend/message"
)

// Verdict is what the MTA's spam filter said about a message, read from the header fields
// it adds.
type Verdict struct {
	Spam     bool
	Score    float64 // meaningful when HasScore
	HasScore bool
}

// SpamVerdict reads the verdict header fields of SpamAssassin (X-Spam-Flag, X-Spam-Status)
// and rspamd (X-Spam, X-Rspamd-Action, X-Spamd-Result) among fields. A message is spam when
// any of them says so; the score is the first one given. Malformed values are ignored.
func SpamVerdict(fields []message.HeaderField) Verdict {
	var v Verdict
	setScore := func(s string) {
		if v.HasScore {
			return
		}
		if f, err := strconv.ParseFloat(strings.TrimSpace(s), 64); err == nil && f == f && f < 1e300 && f > -1e300 {
			v.Score, v.HasScore = f, true
		}
	}
	for _, f := range fields {
		value := strings.TrimSpace(f.Value())
		switch strings.ToLower(f.Name) {
		case "x-spam-flag", "x-spam":
			// SpamAssassin: "X-Spam-Flag: YES"; rspamd's milter: "X-Spam: Yes".
			if yes(value) {
				v.Spam = true
			}
		case "x-spam-status":
			// SpamAssassin: "Yes, score=7.3 required=5.0 tests=... autolearn=no".
			word, rest, _ := strings.Cut(value, ",")
			if yes(word) {
				v.Spam = true
			}
			for _, item := range strings.Fields(rest) {
				if s, ok := strings.CutPrefix(strings.ToLower(item), "score="); ok {
					setScore(s)
					break
				}
			}
		case "x-rspamd-action":
			// rspamd: "no action", "greylist", "add header", "rewrite subject",
			// "soft reject", "reject".
			switch strings.ToLower(value) {
			case "add header", "rewrite subject", "reject", "soft reject":
				v.Spam = true
			}
		case "x-spamd-result":
			// rspamd: "default: True [15.50 / 15.00]; SYMBOL(1.0)[...]; ...".
			verdict, _, _ := strings.Cut(value, ";")
			_, verdict, _ = strings.Cut(verdict, ":")
			flag, bracket, _ := strings.Cut(strings.TrimSpace(verdict), "[")
			if strings.EqualFold(strings.TrimSpace(flag), "true") {
				v.Spam = true
			}
			if score, _, ok := strings.Cut(bracket, "/"); ok {
				setScore(score)
			}
		}
	}
	return v
}

func yes(s string) bool {
	return strings.EqualFold(strings.TrimSpace(s), "yes")
}
