require ["date", "index", "variables", "fileinto"];
if date :index 1 :zone "+0000" :matches "received" "iso8601" "*" { set "first" "${1}"; }
if date :index 1 :last :zone "+0000" :matches "received" "date" "*" { set "last" "${1}"; }
fileinto "${first}_${last}";
