require ["spamtest", "variables", "fileinto"];
if spamtest :comparator "i;ascii-casemap" :matches "*" { fileinto "score-${1}"; }
