require ["date", "variables", "fileinto"];
if date :zone "+0000" :matches "date" "iso8601" "*" { set "utc" "${1}"; }
if date :zone "-0830" :matches "date" "date" "*" { set "west" "${1}"; }
if date :originalzone :matches "date" "hour" "*" { set "orig" "${1}"; }
fileinto "${utc}_${west}_${orig}";
