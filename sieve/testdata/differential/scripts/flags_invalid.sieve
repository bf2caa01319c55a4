require "imap4flags";
addflag ["\\Bogus", "ok", "two words"];
