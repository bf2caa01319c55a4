# An invalid :zone is the local zone (with a warning); "+0160" is "+0200", in Pigeonhole.
require ["date","fileinto","variables"];
if date :zone "CET" :matches "date" "zone" "*" { fileinto "z-${1}"; }
if date :zone "CET" :matches "date" "hour" "*" { fileinto "h-${1}"; }
set "z" "bogus";
if date :zone "${z}" :matches "date" "zone" "*" { fileinto "vz-${1}"; }
if date :originalzone :matches "date" "zone" "*" { fileinto "oz-${1}"; }
if date :zone "+2400" :matches "date" "zone" "*" { fileinto "big-${1}"; }
if date :zone "+0160" :matches "date" "zone" "*" { fileinto "min60-${1}"; }
