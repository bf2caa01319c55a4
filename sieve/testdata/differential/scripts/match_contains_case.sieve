require "fileinto";
if header :contains "subject" "MEETING" { fileinto "Casemap"; }
if header :contains :comparator "i;octet" "subject" "MEETING" { fileinto "Octet"; }
