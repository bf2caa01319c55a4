package managesieve_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/strata-mail/strata/embedded"
	"github.com/strata-mail/strata/proto/metadatapb"
)

const vacationScript = `require ["fileinto", "vacation"];
if header :contains "subject" "invoice" {
  fileinto "Accounts";
}
vacation :days 3 "Away until Monday.";
`

// TestScriptLifecycle: PUTSCRIPT (RFC 5804 2.6) with both literal forms, LISTSCRIPTS (2.7),
// SETACTIVE (2.8), GETSCRIPT (2.9), DELETESCRIPT (2.10) and RENAMESCRIPT (2.11), with the
// response codes of their refusals; a second session sees what the first stored.
func TestScriptLifecycle(t *testing.T) {
	srv := startServer(t, nil)
	c := login(t, srv.ManageSieveAddr())
	c.expect("LISTSCRIPTS", `OK "Listscripts completed"`)
	c.expect(`PUTSCRIPT "vacation" `+literal(vacationScript), `OK "Script stored"`)
	c.expect("PUTSCRIPT \"keep\" {5}\r\nkeep;", `OK "Script stored"`)
	c.expect(`PUTSCRIPT "with space é" "discard;"`, `OK "Script stored"`)
	c.expect("LISTSCRIPTS", `"keep"`, `"vacation"`, `"with space é"`, `OK "Listscripts completed"`)

	c.expect(`SETACTIVE "vacation"`, `OK "Script activated"`)
	c.expect("LISTSCRIPTS", `"keep"`, `"vacation" ACTIVE`, `"with space é"`, `OK "Listscripts completed"`)
	c.expect(`GETSCRIPT "vacation"`, "{"+itoa(len(vacationScript))+"}\r\n"+vacationScript, `OK "Getscript completed"`)
	c.expect(`GETSCRIPT "missing"`, `NO (NONEXISTENT) "GETSCRIPT: there is no script of that name"`)
	c.expect(`SETACTIVE "missing"`, `NO (NONEXISTENT) "SETACTIVE: there is no script of that name"`)

	// RFC 5804 2.10: the active script cannot be deleted.
	c.expect(`DELETESCRIPT "vacation"`, `NO (ACTIVE) "You may not delete an active script"`)
	c.expect(`DELETESCRIPT "missing"`, `NO (NONEXISTENT) "DELETESCRIPT: there is no script of that name"`)
	c.expect(`DELETESCRIPT "keep"`, `OK "Script deleted"`)

	// RFC 5804 2.11: the active flag follows the script.
	c.expect(`RENAMESCRIPT "missing" "x"`, `NO (NONEXISTENT) "RENAMESCRIPT: there is no script of that name"`)
	c.expect(`RENAMESCRIPT "vacation" "with space é"`, `NO (ALREADYEXISTS) "RENAMESCRIPT: a script of that name already exists"`)
	c.expect(`RENAMESCRIPT "vacation" "away"`, `OK "Script renamed"`)

	// Another session, as the account's mail client would open it, sees the same.
	other := login(t, srv.ManageSieveAddr())
	other.expect("LISTSCRIPTS", `"away" ACTIVE`, `"with space é"`, `OK "Listscripts completed"`)

	// RFC 5804 2.8: SETACTIVE "" leaves no script active; then the script can go.
	c.expect(`SETACTIVE ""`, `OK "No script is active"`)
	c.expect(`DELETESCRIPT "away"`, `OK "Script deleted"`)
	other.expect("LISTSCRIPTS", `"with space é"`, `OK "Listscripts completed"`)

	// What delivery reads is what was stored.
	c.expect(`PUTSCRIPT "rules" `+literal(vacationScript), `OK "Script stored"`)
	c.expect(`SETACTIVE "rules"`, `OK "Script activated"`)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	active, err := srv.Metadata().GetActiveSieveScript(ctx, &metadatapb.GetActiveSieveScriptRequest{Account: embedded.DemoAccount})
	if err != nil {
		t.Fatal(err)
	}
	if active.GetScript().GetName() != "rules" || string(active.GetScript().GetContent()) != vacationScript {
		t.Fatalf("active script for delivery: %q %q", active.GetScript().GetName(), active.GetScript().GetContent())
	}
}

// TestPutScriptCompileError: RFC 5804 2.6. A script that does not compile is refused with
// its line and column and is not stored; CHECKSCRIPT (2.12) answers the same without storing
// anything either way.
func TestPutScriptCompileError(t *testing.T) {
	srv := startServer(t, nil)
	c := login(t, srv.ManageSieveAddr())
	bad := "require \"fileinto\";\nif true {\n  frobnicate;\n}\n"
	c.expect(`PUTSCRIPT "bad" `+literal(bad), `NO "line 3, column 3: unknown command \"frobnicate\""`)
	c.expect(`PUTSCRIPT "bad" "fileinto \"x\";"`, `NO "line 1, column 1: `+compileMessage(t, `fileinto "x";`)+`"`)
	c.expect(`CHECKSCRIPT `+literal(bad), `NO "line 3, column 3: unknown command \"frobnicate\""`)
	c.expect(`CHECKSCRIPT `+literal(vacationScript), `OK "Script is valid"`)
	c.expect(`CHECKSCRIPT "if"`, `NO "line 1, column 3: `+compileMessage(t, "if")+`"`)
	c.expect("LISTSCRIPTS", `OK "Listscripts completed"`)
	c.expect(`GETSCRIPT "bad"`, `NO (NONEXISTENT) "GETSCRIPT: there is no script of that name"`)
}

// TestScriptLimits: HAVESPACE (RFC 5804 2.5) and PUTSCRIPT answer QUOTA/MAXSIZE and
// QUOTA/MAXSCRIPTS from the tenant's limits; replacing a script does not count as one more.
func TestScriptLimits(t *testing.T) {
	srv := startServer(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := srv.Metadata().SetDeliverySettings(ctx, &metadatapb.SetDeliverySettingsRequest{
		RequestId: embedded.NewRequestID(), Tenant: embedded.DemoTenant,
		Settings: &metadatapb.DeliverySettings{SieveMaxScriptBytes: 100, SieveMaxScripts: 2},
	}); err != nil {
		t.Fatal(err)
	}
	c := login(t, srv.ManageSieveAddr())
	c.expect(`HAVESPACE "a" 100`, `OK "Putscript would succeed"`)
	c.expect(`HAVESPACE "a" 101`, `NO (QUOTA/MAXSIZE) "A script may have at most 100 octets"`)
	c.expect(`HAVESPACE "a" 4294967295`, `NO (QUOTA/MAXSIZE) "A script may have at most 100 octets"`)
	c.expect(`HAVESPACE "a" 4294967296`, `NO "number larger than 4294967295"`)
	c.expect(`HAVESPACE "" 1`, `NO "A script name cannot be empty"`)
	c.expect(`HAVESPACE "a"`, `NO "HAVESPACE takes a string, a number"`)
	c.expect(`PUTSCRIPT "a" "keep;"`, `OK "Script stored"`)
	c.expect(`PUTSCRIPT "b" "keep;"`, `OK "Script stored"`)
	c.expect(`HAVESPACE "c" 10`, `NO (QUOTA/MAXSCRIPTS) "An account may have at most 2 scripts"`)
	c.expect(`HAVESPACE "b" 10`, `OK "Putscript would succeed"`)
	c.expect(`PUTSCRIPT "c" "keep;"`, `NO (QUOTA/MAXSCRIPTS) "at most 2 sieve scripts"`)
	c.expect(`PUTSCRIPT "b" `+literal("# "+strings.Repeat("x", 100)+"\nkeep;"), `NO (QUOTA/MAXSIZE) "sieve script of 108 bytes: at most 100"`)
	c.expect(`PUTSCRIPT "b" "discard;"`, `OK "Script stored"`)
	c.expect(`GETSCRIPT "b"`, "{8}\r\ndiscard;", `OK "Getscript completed"`)
}
