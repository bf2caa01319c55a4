require ["date", "variables", "fileinto"];
if date :matches "date" "iso8601" "*" { set "i" "${1}"; }
if date :matches "date" "std11" "*" { set "s" "${1}"; }
fileinto "${i}|${s}";
