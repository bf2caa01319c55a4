package sieve

import (
	"strings"
	"time"
)

// vacation (RFC 5230) and vacation-seconds (RFC 6131): an auto-reply, with
// the response-tracking rules that keep it from answering lists, robots
// and the same sender twice within the period.

func init() {
	registerCapability("vacation", "vacation-seconds")
	registerCommand(&commandDef{name: "vacation", ext: "vacation", tags: []*tagDef{
		{name: ":days", hasArg: true, arg: typeNumber, group: "period"},
		{name: ":seconds", ext: "vacation-seconds", hasArg: true, arg: typeNumber, group: "period"},
		{name: ":subject", hasArg: true, arg: typeString},
		{name: ":from", hasArg: true, arg: typeString},
		{name: ":addresses", hasArg: true, arg: typeStringList},
		{name: ":mime"},
		{name: ":handle", hasArg: true, arg: typeString},
	}, args: []argType{typeString}, check: checkVacation, run: runVacation})
}

// checkVacation: a constant :from must be an address (RFC 5230 4.3).
func checkVacation(c *compiler, n *node) error {
	if from, ok := constString(n.tags[":from"]); ok {
		if _, valid := redirectAddress(from); !valid {
			return c.errorf(n.tags[":from"].pos, "vacation :from is not an address: %q", from)
		}
	}
	return nil
}

// listHeaders mark mailing-list traffic (RFC 2369, RFC 2919).
var listHeaders = []string{"List-Id", "List-Help", "List-Subscribe", "List-Unsubscribe", "List-Post", "List-Owner", "List-Archive"}

func runVacation(r *run, n *node) (bool, error) {
	l := r.limits
	// RFC 5230 4.1, RFC 6131 2: the period, clamped to the site's bounds.
	period := l.VacationDefaultPeriod
	if v, ok := n.tags[":days"]; ok {
		period = v.num * 86400
		if v.num > l.VacationMaxPeriod/86400 {
			period = l.VacationMaxPeriod
		}
	}
	if v, ok := n.tags[":seconds"]; ok {
		period = v.num
	}
	period = min(max(period, l.VacationMinPeriod), l.VacationMaxPeriod)

	v := &VacationReply{Body: r.expand(n.args[0].strs[0]), MIME: n.hasTag(":mime"), Seconds: period}
	if t, ok := n.tags[":subject"]; ok {
		v.ScriptSubject = r.expand(t.strs[0])
	}
	if t, ok := n.tags[":from"]; ok {
		v.ScriptFrom = r.expand(t.strs[0])
	}
	// RFC 5230 4.2: without :handle, the same arguments make the same handle.
	v.Handle = v.Body
	if t, ok := n.tags[":handle"]; ok {
		v.Handle = r.expand(t.strs[0])
	} else {
		v.Handle += orDefault(v.ScriptSubject, "<default-subject>") + orDefault(v.ScriptFrom, "<default-from>")
		if v.MIME {
			v.Handle += "<MIME>"
		} else {
			v.Handle += "<NO-MIME>"
		}
	}
	v.To = r.in.Envelope.From // RFC 5230 4.6: the reply goes to the return path
	v.From = v.ScriptFrom
	if v.From == "" {
		v.From = r.in.Envelope.To
	}
	// RFC 5230 4.6: the default subject is "Auto: " and the original one.
	v.Subject = v.ScriptSubject
	if v.Subject == "" {
		orig := r.headerValues("Subject")
		v.Subject = "Auto: "
		if len(orig) > 0 {
			v.Subject += orig[0]
		}
	}
	if ids := r.headerValues("Message-ID"); len(ids) > 0 {
		v.InReplyTo = ids[0] // RFC 5230 5.7: In-Reply-To and References
	}
	var mine []string
	if t, ok := n.tags[":addresses"]; ok {
		mine = r.expandAll(t)
	}
	mine = append(mine, r.in.Envelope.To, r.in.Envelope.OrigTo)
	mine = append(mine, r.in.UserAddresses...)
	reason, err := r.vacationSuppressed(n, v, mine)
	if err != nil {
		return false, err
	}
	v.Send, v.SuppressedBy = reason == "", reason
	return true, r.addAction(n, Action{Kind: ActionVacation, Vacation: v})
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// vacationSuppressed applies the response rules (RFC 5230 4.5, RFC 3834
// 2) and returns why no reply goes out, or "".
func (r *run) vacationSuppressed(n *node, v *VacationReply, mine []string) (string, error) {
	sender := r.in.Envelope.From
	if sender == "" {
		return "null sender", nil // RFC 5230 4.5: never reply to the null return path
	}
	if containsFold(mine, sender) {
		return "sender is the user", nil
	}
	for _, a := range r.headerValues("Auto-Submitted") {
		if !strings.EqualFold(strings.TrimSpace(strings.SplitN(a, ";", 2)[0]), "no") {
			return "auto-submitted", nil // RFC 3834 2, RFC 5230 4.5
		}
	}
	for _, p := range r.headerValues("Precedence") {
		switch strings.ToLower(strings.TrimSpace(p)) {
		case "bulk", "list", "junk":
			return "bulk precedence", nil // RFC 3834 2
		}
	}
	for _, h := range listHeaders {
		if len(r.rawHeaderValues(h)) > 0 {
			return "mailing list", nil // RFC 5230 4.5: no replies to lists
		}
	}
	local := strings.ToLower(sender)
	if i := strings.LastIndexByte(local, '@'); i >= 0 {
		local = local[:i]
	}
	// RFC 5230 4.5: owner-*, *-request, MAILER-DAEMON and the like are robots.
	if local == "mailer-daemon" || local == "listserv" || local == "majordomo" ||
		strings.HasPrefix(local, "owner-") || strings.HasSuffix(local, "-request") || strings.HasSuffix(local, "-owner") {
		return "system address", nil
	}
	// RFC 5230 4.5: only reply when the user is among the recipients.
	addressed := false
	for _, h := range []string{"To", "Cc", "Bcc", "Resent-To", "Resent-Cc", "Resent-Bcc"} {
		for _, raw := range r.rawHeaderValues(h) {
			addrs, _ := addressesOf(raw)
			for _, a := range addrs {
				if containsFold(mine, a) {
					addressed = true
				}
			}
		}
	}
	if !addressed {
		return "not addressed to the user", nil
	}
	if r.in.Vacations != nil {
		since := r.in.Now.Add(-time.Duration(v.Seconds) * time.Second)
		done, err := r.in.Vacations.Responded(r.ctx, v.Handle, sender, since)
		if err != nil {
			return "", r.errorf(n, "vacation: %v", err)
		}
		if done {
			return "already responded", nil // RFC 5230 4.2
		}
	}
	return "", nil
}
