require ["variables", "fileinto"];
if header :matches "subject" "Meeting*at*" { fileinto "${0}|${1}|${2}|${3}"; }
