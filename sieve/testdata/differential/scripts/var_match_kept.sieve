require ["variables", "fileinto"];
if header :matches "subject" "*" { set "s" "${1}"; }
if header :matches "subject" "nothing*matches" { fileinto "bad"; }
fileinto "keep-${1}";
