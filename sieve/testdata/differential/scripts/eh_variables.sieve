require ["editheader", "variables", "fileinto"];
if header :matches "subject" "*" { addheader "X-Orig-Subject" "${1}"; }
deleteheader "subject";
addheader "Subject" "[tagged] ${1}";
if header :matches "subject" "*" { fileinto "${1}"; }
