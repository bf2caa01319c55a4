require "vacation";
vacation :addresses ["support@example.org", "help@example.org"] :subject "Away" "Away.";
