require ["subaddress", "envelope", "variables", "fileinto"];
if envelope :detail :matches "to" "*" { fileinto "d-${1}"; }
