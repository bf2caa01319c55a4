require ["body", "fileinto"];
if body :contains "line feed body" { fileinto "CrlfBody"; }
if header :is "x-tag" "alpha" { fileinto "CrlfHeader"; }
