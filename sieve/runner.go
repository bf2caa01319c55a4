package sieve

import "context"

// Runner runs site scripts around the user's, as Pigeonhole's sieve_before
// and sieve_after: Before in order, then Personal (when not nil), then
// After, all into one result. Each script starts with a fresh "stop"; the
// chain goes on to the next script only while the message is still kept,
// by the implicit keep or an explicit keep into INBOX, so a before script
// that files the message away or discards it ends the chain. The implicit
// keep applies when the last script that ran left it in effect. A runtime
// error in any script ends the chain; the actions of the scripts before it
// stand and the message is kept (RFC 5228 2.10.6).
type Runner struct {
	Before   []*Program
	Personal *Program
	After    []*Program
}

// Execute runs the chain against one message.
func (rn *Runner) Execute(ctx context.Context, in Input) (*Result, error) {
	type entry struct {
		p   *Program
		key string
	}
	var chain []entry
	for _, p := range rn.Before {
		chain = append(chain, entry{p, "global/" + p.name})
	}
	if rn.Personal != nil {
		chain = append(chain, entry{rn.Personal, "personal/" + rn.Personal.name})
	}
	for _, p := range rn.After {
		chain = append(chain, entry{p, "global/" + p.name})
	}
	if len(chain) == 0 {
		return &Result{ImplicitKeep: true}, nil
	}
	r := newRun(ctx, &in, chain[0].p.opts.Limits)
	for _, e := range chain {
		r.limits = e.p.opts.Limits.withDefaults()
		r.stopped, r.canceled, r.keptInbox = false, false, false
		before := len(r.res.Actions)
		if err := r.script(e.p, e.key); err != nil {
			res := &Result{Actions: r.res.Actions[:before:before], ImplicitKeep: true, Err: err}
			return res, err
		}
		if r.canceled && !r.keptInbox {
			break
		}
	}
	res, err := r.finish(nil)
	for _, a := range res.Actions {
		if res.ImplicitKeep && a.stores() && isInbox(a.Mailbox) {
			// RFC 5228 2.10.3: an implicit keep after an explicit keep
			// of an earlier script is the same store.
			res.ImplicitKeep, res.ImplicitKeepFlags = false, nil
		}
	}
	return res, err
}
