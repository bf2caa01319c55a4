require ["spamtestplus", "variables", "fileinto"];
if spamtest :percent :comparator "i;ascii-casemap" :matches "*" { fileinto "percent-${1}"; }
