require ["date", "variables", "fileinto"];
if date :matches "date" "date" "*" { set "d" "${1}"; }
if date :matches "date" "time" "*" { set "t" "${1}"; }
if date :matches "date" "weekday" "*" { set "w" "${1}"; }
if date :matches "date" "zone" "*" { set "z" "${1}"; }
if date :matches "date" "julian" "*" { set "j" "${1}"; }
fileinto "${d}_${t}_${w}_${z}_${j}";
