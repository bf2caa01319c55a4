package managesieve

import (
	"fmt"
	"strings"
	"time"

	"github.com/strata-mail/strata/frontend/auth"
	"github.com/strata-mail/strata/frontend/managesieve/sievewire"
)

// command is an entry of the dispatch table: the handler, the states it runs in and the
// arguments it takes (RFC 5804 2 and 4).
type command struct {
	run func(c *conn, cmd *sievewire.Command) (*response, error)
	// states: the command runs in these states and is refused in the others.
	notAuth, auth bool
	// args are the kinds of its arguments in order ('s' string, 'n' number); the first
	// required of them are required, the rest optional.
	args     string
	required int
}

var commands map[string]command

func init() {
	commands = map[string]command{
		// RFC 5804 2.1-2.4, 2.13: in both states unless noted.
		"CAPABILITY":   {run: (*conn).cmdCapability, notAuth: true, auth: true},
		"LOGOUT":       {run: (*conn).cmdLogout, notAuth: true, auth: true},
		"NOOP":         {run: (*conn).cmdNoop, notAuth: true, auth: true, args: "s"},
		"STARTTLS":     {run: (*conn).cmdStartTLS, notAuth: true},
		"AUTHENTICATE": {run: (*conn).cmdAuthenticate, notAuth: true, args: "ss", required: 1},
		// RFC 5804 2.14.1
		"UNAUTHENTICATE": {run: (*conn).cmdUnauthenticate, auth: true},
		// RFC 5804 2.5-2.12: the scripts of the authenticated account.
		"HAVESPACE":    {run: (*conn).cmdHaveSpace, auth: true, args: "sn", required: 2},
		"PUTSCRIPT":    {run: (*conn).cmdPutScript, auth: true, args: "ss", required: 2},
		"LISTSCRIPTS":  {run: (*conn).cmdListScripts, auth: true},
		"SETACTIVE":    {run: (*conn).cmdSetActive, auth: true, args: "s", required: 1},
		"GETSCRIPT":    {run: (*conn).cmdGetScript, auth: true, args: "s", required: 1},
		"DELETESCRIPT": {run: (*conn).cmdDeleteScript, auth: true, args: "s", required: 1},
		"RENAMESCRIPT": {run: (*conn).cmdRenameScript, auth: true, args: "ss", required: 2},
		"CHECKSCRIPT":  {run: (*conn).cmdCheckScript, auth: true, args: "s", required: 1},
	}
}

// dispatch checks a command against the table and runs it.
func (c *conn) dispatch(cmd *sievewire.Command) (*response, error) {
	spec, known := commands[cmd.Name]
	if !known {
		c.badCommand("Unknown command " + cmd.Name) // BYE after too many
		return nil, errAnswered
	}
	c.bad = 0
	if (c.state == stateNotAuthenticated && !spec.notAuth) || (c.state == stateAuthenticated && !spec.auth) {
		if c.state == stateNotAuthenticated {
			return no("", cmd.Name+" needs authentication first"), nil
		}
		return no("", cmd.Name+" is not allowed after authentication"), nil
	}
	if c.state == stateAuthenticated && time.Since(c.accountChecked) >= auth.RecheckInterval {
		// A disabled or deleted account, or a revoked credential (a changed password, a
		// revoked app password), ends the session at its next command: RFC 5804 4 BYE.
		ctx, cancel := c.rpcContext()
		why, err := auth.Recheck(ctx, c.srv.cfg.Metadata, c.account, auth.ServiceManageSieve)
		cancel()
		c.accountChecked = time.Now()
		if err != nil {
			c.log.Debug("re-check account", "err", err)
		}
		if why != "" {
			return bye("", why), nil
		}
	}
	if resp := checkArgs(cmd, spec); resp != nil {
		return resp, nil
	}
	if cmd.Dropped > 0 {
		// A literal was over the limits and thrown away: the command cannot run. A script
		// that large is over every owner's limit (RFC 5804 1.3 QUOTA/MAXSIZE).
		return no(codeQuotaMaxSize, fmt.Sprintf("A string of %d octets is more than this server accepts (%d)", cmd.Dropped, c.srv.limits.MaxScriptSize)), nil
	}
	return spec.run(c, cmd)
}

// checkArgs answers NO to a command with the wrong number or kinds of arguments.
func checkArgs(cmd *sievewire.Command, spec command) *response {
	if len(cmd.Args) < spec.required || len(cmd.Args) > len(spec.args) {
		return no("", fmt.Sprintf("%s takes %s", cmd.Name, describeArgs(spec)))
	}
	for i, a := range cmd.Args {
		want := sievewire.ArgString
		if spec.args[i] == 'n' {
			want = sievewire.ArgNumber
		}
		if a.Kind != want {
			return no("", fmt.Sprintf("%s takes %s", cmd.Name, describeArgs(spec)))
		}
	}
	return nil
}

func describeArgs(spec command) string {
	if spec.args == "" {
		return "no arguments"
	}
	var parts []string
	for i, k := range spec.args {
		kind := "a string"
		if k == 'n' {
			kind = "a number"
		}
		if i >= spec.required {
			kind += " (optional)"
		}
		parts = append(parts, kind)
	}
	return strings.Join(parts, ", ")
}
