package managesieve

import (
	"errors"
	"fmt"
	"strconv"
	"unicode/utf8"

	"github.com/strata-mail/strata/frontend/managesieve/sievewire"
	"github.com/strata-mail/strata/proto/metadatapb"
	"github.com/strata-mail/strata/sieve"
)

// maxRedirects is the MAXREDIRECTS capability: what the interpreter allows per message.
func (c *conn) maxRedirects() int {
	if n := c.srv.cfg.SieveLimits.MaxRedirects; n > 0 {
		return n
	}
	return sieve.DefaultLimits.MaxRedirects
}

// compile checks a script as delivery will run it. RFC 5804 2.6, 2.12: a script that does
// not compile is refused with NO and where the problem is.
func (c *conn) compile(name string, content []byte) *response {
	_, err := sieve.Compile(name, content, sieve.Options{Extensions: c.srv.extensions, Limits: c.srv.cfg.SieveLimits})
	if err == nil {
		return nil
	}
	var serr *sieve.Error
	if errors.As(err, &serr) {
		return no("", fmt.Sprintf("line %d, column %d: %s", serr.Line, serr.Column, serr.Msg))
	}
	return no("", err.Error())
}

// scriptName checks a name argument for the commands that do not send it to the service
// before they answer; the service checks the full rules of RFC 5804 1.6 (Unicode NFC
// among them) on every name it stores.
func scriptName(arg sievewire.Arg) (string, *response) {
	name := arg.Str
	if len(name) == 0 {
		return "", no("", "A script name cannot be empty") // RFC 5804 1.6
	}
	if !utf8.Valid(name) {
		return "", no("", "A script name must be UTF-8") // RFC 5804 1.6
	}
	for _, r := range string(name) {
		// RFC 5804 1.6: no control characters (Unicode Cc), LINE SEPARATOR or PARAGRAPH
		// SEPARATOR.
		if r < 0x20 || (r >= 0x7f && r <= 0x9f) || r == 0x2028 || r == 0x2029 {
			return "", no("", "A script name cannot hold control characters")
		}
	}
	return string(name), nil
}

// answer turns a service error into the command's response; errors the client is not told
// about end the command with "Internal error" (conn.next logs them).
func answer(err error, what string) (*response, error) {
	if resp := rpcResponse(err, what); resp != nil {
		return resp, nil
	}
	return nil, fmt.Errorf("%s: %w", what, err)
}

// cmdHaveSpace: RFC 5804 2.5. Whether a script of that name and size would be stored:
// under the owner's size limit, and a new name under the count limit.
func (c *conn) cmdHaveSpace(cmd *sievewire.Command) (*response, error) {
	name, resp := scriptName(cmd.Args[0])
	if resp != nil {
		return resp, nil
	}
	size := int64(cmd.Args[1].Num)
	ctx, cancel := c.rpcContext()
	defer cancel()
	list, err := c.srv.cfg.Metadata.ListSieveScripts(ctx, &metadatapb.ListSieveScriptsRequest{Account: c.account.GetEmail()})
	if err != nil {
		return answer(err, "HAVESPACE")
	}
	if max := int64(list.GetMaxScriptBytes()); max > 0 && size > max {
		return no(codeQuotaMaxSize, fmt.Sprintf("A script may have at most %d octets", max)), nil
	}
	if size > c.srv.limits.MaxScriptSize {
		return no(codeQuotaMaxSize, fmt.Sprintf("A script may have at most %d octets", c.srv.limits.MaxScriptSize)), nil
	}
	exists := false
	for _, s := range list.GetScripts() {
		exists = exists || s.GetName() == name
	}
	if max := int(list.GetMaxScripts()); !exists && max > 0 && len(list.GetScripts()) >= max {
		return no(codeQuotaMaxScript, fmt.Sprintf("An account may have at most %d scripts", max)), nil
	}
	return ok("Putscript would succeed"), nil
}

// cmdPutScript: RFC 5804 2.6. The script is compiled first and stored only if it
// compiles; a script of the same name is replaced and keeps its active flag.
func (c *conn) cmdPutScript(cmd *sievewire.Command) (*response, error) {
	name, resp := scriptName(cmd.Args[0])
	if resp != nil {
		return resp, nil
	}
	content := cmd.Args[1].Str
	if resp := c.compile(name, content); resp != nil {
		return resp, nil
	}
	ctx, cancel := c.rpcContext()
	defer cancel()
	_, err := c.srv.cfg.Metadata.PutSieveScript(ctx, &metadatapb.PutSieveScriptRequest{
		RequestId: newRequestID(), Account: c.account.GetEmail(), Name: name, Content: content,
	})
	if err != nil {
		return answer(err, "PUTSCRIPT")
	}
	return ok("Script stored"), nil
}

// cmdCheckScript: RFC 5804 2.12. PUTSCRIPT's check without storing.
func (c *conn) cmdCheckScript(cmd *sievewire.Command) (*response, error) {
	if resp := c.compile("CHECKSCRIPT", cmd.Args[0].Str); resp != nil {
		return resp, nil
	}
	return ok("Script is valid"), nil
}

// cmdListScripts: RFC 5804 2.7. One line per script, the active one marked ACTIVE.
func (c *conn) cmdListScripts(cmd *sievewire.Command) (*response, error) {
	ctx, cancel := c.rpcContext()
	defer cancel()
	list, err := c.srv.cfg.Metadata.ListSieveScripts(ctx, &metadatapb.ListSieveScriptsRequest{Account: c.account.GetEmail()})
	if err != nil {
		return answer(err, "LISTSCRIPTS")
	}
	for _, s := range list.GetScripts() {
		b := appendString(nil, []byte(s.GetName()))
		if s.GetActive() {
			b = append(b, " ACTIVE"...)
		}
		c.writeLine(b)
	}
	return ok("Listscripts completed"), nil
}

// cmdSetActive: RFC 5804 2.8. The script is compiled again before it becomes the one
// delivery runs, in case the interpreter changed since it was stored; "" deactivates.
func (c *conn) cmdSetActive(cmd *sievewire.Command) (*response, error) {
	name := ""
	if len(cmd.Args[0].Str) > 0 {
		var resp *response
		if name, resp = scriptName(cmd.Args[0]); resp != nil {
			return resp, nil
		}
		ctx, cancel := c.rpcContext()
		script, err := c.srv.cfg.Metadata.GetSieveScript(ctx, &metadatapb.GetSieveScriptRequest{Account: c.account.GetEmail(), Name: name})
		cancel()
		if err != nil {
			return answer(err, "SETACTIVE")
		}
		if resp := c.compile(name, script.GetContent()); resp != nil {
			return resp, nil
		}
	}
	ctx, cancel := c.rpcContext()
	defer cancel()
	_, err := c.srv.cfg.Metadata.SetActiveSieveScript(ctx, &metadatapb.SetActiveSieveScriptRequest{
		RequestId: newRequestID(), Account: c.account.GetEmail(), Name: name,
	})
	if err != nil {
		return answer(err, "SETACTIVE")
	}
	if name == "" {
		return ok("No script is active"), nil
	}
	return ok("Script activated"), nil
}

// cmdGetScript: RFC 5804 2.9. The script goes out as a literal, then CRLF and OK.
func (c *conn) cmdGetScript(cmd *sievewire.Command) (*response, error) {
	name, resp := scriptName(cmd.Args[0])
	if resp != nil {
		return resp, nil
	}
	ctx, cancel := c.rpcContext()
	defer cancel()
	script, err := c.srv.cfg.Metadata.GetSieveScript(ctx, &metadatapb.GetSieveScriptRequest{Account: c.account.GetEmail(), Name: name})
	if err != nil {
		return answer(err, "GETSCRIPT")
	}
	content := script.GetContent()
	b := append([]byte("{"), strconv.Itoa(len(content))...)
	b = append(b, "}\r\n"...)
	c.writeLine(append(b, content...))
	return ok("Getscript completed"), nil
}

// cmdDeleteScript: RFC 5804 2.10. The active script cannot be deleted (NO (ACTIVE)).
func (c *conn) cmdDeleteScript(cmd *sievewire.Command) (*response, error) {
	name, resp := scriptName(cmd.Args[0])
	if resp != nil {
		return resp, nil
	}
	ctx, cancel := c.rpcContext()
	defer cancel()
	_, err := c.srv.cfg.Metadata.DeleteSieveScript(ctx, &metadatapb.DeleteSieveScriptRequest{
		RequestId: newRequestID(), Account: c.account.GetEmail(), Name: name,
	})
	if err != nil {
		return answer(err, "DELETESCRIPT")
	}
	return ok("Script deleted"), nil
}

// cmdRenameScript: RFC 5804 2.11. NONEXISTENT for an unknown old name, ALREADYEXISTS
// for a taken new one; the active flag moves with the script.
func (c *conn) cmdRenameScript(cmd *sievewire.Command) (*response, error) {
	oldName, resp := scriptName(cmd.Args[0])
	if resp != nil {
		return resp, nil
	}
	newName, resp := scriptName(cmd.Args[1])
	if resp != nil {
		return resp, nil
	}
	ctx, cancel := c.rpcContext()
	defer cancel()
	_, err := c.srv.cfg.Metadata.RenameSieveScript(ctx, &metadatapb.RenameSieveScriptRequest{
		RequestId: newRequestID(), Account: c.account.GetEmail(), Name: oldName, NewName: newName,
	})
	if err != nil {
		return answer(err, "RENAMESCRIPT")
	}
	return ok("Script renamed"), nil
}
