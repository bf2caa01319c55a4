require "fileinto";
if header :contains "subject" "CAFÉ" { fileinto "UpperNonAscii"; }
if header :contains "subject" "CAF" { fileinto "UpperAscii"; }
