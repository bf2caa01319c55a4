require ["variables", "fileinto"];
if header :matches "subject" "[*] *" { fileinto "list-${1}"; }
elsif header :matches "subject" "* *" { fileinto "first-${1}"; }
