require ["fileinto", "body"];
if header :contains "subject" "café" { fileinto "Cafe"; }
if header :contains "from" "Zoë" { fileinto "Zoe"; }
if body :contains "naïve" { fileinto "Body8"; }
