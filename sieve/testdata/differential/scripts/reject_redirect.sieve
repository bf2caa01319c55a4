require "reject";
redirect "forward@example.net";
reject "Refused";
