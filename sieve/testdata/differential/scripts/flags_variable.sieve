require ["imap4flags", "variables", "fileinto"];
setflag "myflags" "\\Draft";
addflag "myflags" ["Extra", "\\Draft"];
if hasflag "myflags" "extra" { fileinto :flags "${myflags}" "Lists"; }
keep :flags "myflags";
