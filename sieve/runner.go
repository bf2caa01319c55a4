package sieve

import "context"

// Runner runs site scripts around the user's, as Pigeonhole's sieve_before
// and sieve_after: Before in order, then Personal (when not nil), then
// After, all into one result. RFC 5228 says nothing of chains; the rules
// are Pigeonhole's (its multiscript execution, checked against sieve-test
// -s in the differential corpus):
//
//   - Each script starts with a fresh "stop" and implicit keep; variables
//     are its own, the imap4flags internal variable carries over.
//   - The chain goes on to the next script only while the message is kept:
//     the script left its implicit keep in effect or did an explicit keep.
//     Anything else (fileinto, also into INBOX, redirect, discard, reject)
//     ends the chain there, so a before script that files the message away
//     decides for the user.
//   - An explicit keep of a script the chain went past is not a store of
//     its own: it only keeps the message for the next script. When the
//     last script that ran keeps the message implicitly, the store into
//     INBOX takes that keep's :flags if it named some (else the internal
//     variable's, as any implicit keep); when it files the message
//     elsewhere without keeping it, the earlier keep is dropped.
//   - A runtime error in any script ends the chain; the actions of the
//     scripts before it stand and the message is kept (RFC 5228 2.10.6).
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
	var deferred *Action // the keep of a script the chain went past
	for i, e := range chain {
		r.limits = e.p.opts.Limits.withDefaults()
		r.stopped, r.canceled, r.explicitKeep = false, false, false
		before := len(r.res.Actions)
		if err := r.script(e.p, e.key); err != nil {
			res := &Result{Actions: r.res.Actions[:before:before], ImplicitKeep: true, Err: err}
			return res, err
		}
		if i == len(chain)-1 || (r.canceled && !r.explicitKeep) {
			break
		}
		// The chain goes on: this script's keep becomes the deferred keep.
		kept := r.res.Actions[:before]
		for _, a := range r.res.Actions[before:] {
			if a.Kind == ActionKeep {
				deferred = &a
				continue
			}
			kept = append(kept, a)
		}
		r.res.Actions = kept
	}
	res, err := r.finish(nil)
	if res.ImplicitKeep && deferred != nil && deferred.flagsGiven {
		res.ImplicitKeepFlags = append([]string(nil), deferred.Flags...)
	}
	for _, a := range res.Actions {
		if res.ImplicitKeep && a.stores() && isInbox(a.Mailbox) {
			// RFC 5228 2.10.3: the implicit keep and a store into INBOX
			// that kept it (fileinto :copy "INBOX") are the same store.
			res.ImplicitKeep, res.ImplicitKeepFlags = false, nil
		}
	}
	return res, err
}
