require "vacation";
discard;
vacation :subject "Away" "Away.";
