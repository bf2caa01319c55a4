require ["fileinto", "variables"];
if header :matches "subject" "*: *" { fileinto "a-${1}-b-${2}"; }
