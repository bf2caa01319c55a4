package spam

import (
	"math"

	"github.com/strata-mail/strata/sieve"
)

// SieveScore turns the verdict into what Sieve's spamtest and spamtestplus read (RFC 5235):
// an untested message is untested; a rejected one is certain spam (10 and 100%); otherwise
// the score is placed on rspamd's scale from 0 to the reject score. See ScoreOf.
func (v Verdict) SieveScore() sieve.Score {
	if !v.Tested {
		return sieve.Score{}
	}
	return ScoreOf(v.Score, v.RequiredScore, v.Action == "reject")
}

// ScoreOf maps a filter's score against the score at which it rejects (rspamd's
// required_score, SpamAssassin's required= times the ratio the site chooses) onto RFC
// 5235's scales: spamtest 1 (RFC 5235 3.2: "definitely not spam") to 10 ("definitely
// spam"), spamtestplus 0 to 100 percent (RFC 5235 3.2). A score at or below 0 is 1 and 0%;
// at or above reject, or certain, 10 and 100%; in between both grow linearly, so that
// value 10 is only reached at the reject score. A reject score that is not positive or
// not finite leaves only the ends: certain or score > 0 spam, else not. The result is
// always Tested.
func ScoreOf(score, reject float64, certain bool) sieve.Score {
	var ratio float64
	switch {
	case certain:
		ratio = 1
	case math.IsNaN(score):
		ratio = 0
	case reject <= 0 || math.IsNaN(reject) || math.IsInf(reject, 0):
		if score > 0 {
			ratio = 1
		}
	default:
		ratio = min(max(score/reject, 0), 1)
	}
	return sieve.Score{
		Tested:  true,
		Value:   1 + int(math.Floor(ratio*9)),
		Percent: int(math.Round(ratio * 100)),
	}
}
