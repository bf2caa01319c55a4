require "imap4flags";
addflag "Counted";
redirect "counter@example.net";
