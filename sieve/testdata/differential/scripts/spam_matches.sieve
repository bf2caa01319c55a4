require ["spamtest", "variables", "fileinto"];
if spamtest :matches "*" { fileinto "score-${1}"; }
